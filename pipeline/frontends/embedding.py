"""Google's speech embedding as a fixed front end (``features.preprocess: embedding``).

The two TFLite models ship in the openwakeword 0.5.1 wheel (Apache-2.0):
``melspectrogram.tflite`` (audio -> 32 log-mel bins every 10 ms, 512-sample window) and
``embedding_model.tflite`` (76 mel frames -> 96 values). They were trained on a large amount of
speech, so a small head on top learns keywords from few real clips. The package itself is not
imported (it needs onnxruntime); only its files are located.

Recipe (measured by a colleague: 89% on unseen speakers with a plain logistic regression on the
2,804 shared real clips): int16-valued float32 audio into the mel model, mel * 1/10 + 2, windows
of 76 frames every 8 frames. A 1 s clip gives only 97 mel frames (3 windows), so it is padded with
PAD_SAMPLES of silence on each side to give several windows around the word.

Not TensorFlow ops (two TFLite models), so it cannot live inside an exported graph: the export is
a bundle that ``pipeline.inference`` runs with this module.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from pipeline.core.errors import ParamError
from pipeline.core.tf import tflite_interpreter
from pipeline.frontends.base import FrontEnd

EMBEDDING_DIM = 96
MEL_BINS = 32
MEL_WINDOW_SAMPLES = 512
MEL_HOP_SAMPLES = 160
WINDOW_FRAMES = 76
WINDOW_STEP_FRAMES = 8
# 0.25 s of silence each side of the clip (9 windows). Logistic regression on the 2,804 shared real
# clips, 459 clips of held-out speakers: pad 0 (3 windows) 70.6%, pad 4000 (9) 89.3%, pad 8000
# (16) 88.2%, so 4000: the best of the three and half the cost of 8000.
PAD_SAMPLES = 4000
MODEL_FILES = ("melspectrogram.tflite", "embedding_model.tflite")

_INTERPRETERS: dict[str, object] = {}


def models_dir() -> Path:
    """The folder of the openwakeword wheel's TFLite models (found without importing it)."""
    spec = importlib.util.find_spec("openwakeword")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "openwakeword 0.5.1 is not installed; it provides the speech-embedding models "
            "(pip install --no-deps openwakeword==0.5.1)"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "resources" / "models"
    for name in MODEL_FILES:
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name}: speech-embedding model file missing")
    return folder


def mel_frames_for(samples: int) -> int:
    padded = samples + 2 * PAD_SAMPLES
    return 0 if padded < MEL_WINDOW_SAMPLES else 1 + (padded - MEL_WINDOW_SAMPLES) // MEL_HOP_SAMPLES


def windows_for(samples: int) -> int:
    """Embedding windows that ``samples`` of audio give (after padding)."""
    frames = mel_frames_for(samples)
    return 0 if frames < WINDOW_FRAMES else 1 + (frames - WINDOW_FRAMES) // WINDOW_STEP_FRAMES


def _interpreter(name: str):
    if name not in _INTERPRETERS:
        interp = tflite_interpreter(model_path=str(models_dir() / name))
        interp.allocate_tensors()
        _INTERPRETERS[name] = interp
    return _INTERPRETERS[name]


def _run(name: str, x: np.ndarray) -> np.ndarray:
    interp = _interpreter(name)
    inp = interp.get_input_details()[0]
    if tuple(inp["shape"]) != x.shape:
        interp.resize_tensor_input(inp["index"], list(x.shape))
        interp.allocate_tensors()
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"]).copy()


def mel(clip: np.ndarray) -> np.ndarray:
    """One clip ``[samples]`` in [-1, 1] -> scaled log-mel ``[frames, 32]``.

    One clip per call: the mel model is not batch-independent (a clip's output changes when other
    clips share its batch), so batching would make a clip's features depend on its neighbours.
    """
    padded = np.pad(np.asarray(clip, np.float32), (PAD_SAMPLES, PAD_SAMPLES))
    int16_valued = np.clip(np.round(padded * 32768.0), -32768, 32767).astype(np.float32)
    out = _run("melspectrogram.tflite", int16_valued[None, :])
    return out[0, 0] / 10.0 + 2.0


def embed(audio: np.ndarray, progress: bool = False) -> np.ndarray:
    """``[batch, samples]`` audio -> ``[batch, windows, 96]`` speech embeddings (float32).

    Clip by clip and window by window: batch size 1 is both batch-independent and the fastest
    (the interpreter's XNNPACK path is several times slower per window on resized batches).
    """
    from tqdm import tqdm

    audio = np.asarray(audio, np.float32)
    windows = windows_for(audio.shape[1])
    if windows < 1:
        raise ValueError(f"embedding: {audio.shape[1]} samples is too short for one window")
    out = np.zeros((len(audio), windows, EMBEDDING_DIM), np.float32)
    for i in tqdm(range(len(audio)), desc="speech embedding", unit="clip", disable=not progress, leave=False):
        spec = mel(audio[i])
        for w in range(windows):
            start = w * WINDOW_STEP_FRAMES
            window = spec[None, start : start + WINDOW_FRAMES, :, None].astype(np.float32)
            out[i, w] = _run("embedding_model.tflite", window).reshape(EMBEDDING_DIM)
    return out


class SpeechEmbedding(FrontEnd):
    name = "embedding"
    description = (
        "Google speech embedding (openwakeword melspectrogram.tflite -> embedding_model.tflite), "
        "see pipeline/frontends/embedding.py"
    )
    in_graph = False

    def check(self, cfg) -> None:
        if cfg.sample_rate != 16000:
            raise ParamError("params: features.preprocess 'embedding' needs sample_rate 16000")

    def frames_for(self, cfg, samples: int) -> int:
        return windows_for(samples)

    def width(self, cfg) -> int:
        return EMBEDDING_DIM

    def compute_numpy(self, audio: np.ndarray, cfg, batch_size: int) -> np.ndarray:
        return embed(audio)


FRONTEND = SpeechEmbedding()
