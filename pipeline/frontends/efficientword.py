"""EfficientWord-Net's word embedding as a fixed front end (``features.preprocess: efficientword``).

The model ships in the ``efficientword-net`` 1.0.5 wheel (Apache-2.0): a ResNet-50 trained with an
ArcFace loss to tell words apart, as ONNX (``resnet_50_arc/slim_93%_accuracy_72.7390%.onnx``, 87
MB; a 22 MB int8 twin). Input: a 1.5 s window as 64-bin log filterbanks (25 ms frames every 10
ms, 512-point FFT, rectangular window, no pre-emphasis: python_speech_features' ``logfbank``),
``[1, 1, 149, 64]``; output: 2,048 values. Only the model files are used (the package is installed
without its dependencies, like openwakeword): the filterbank is computed here, and
tests/test_efficientword.py shows it equals the package's own ``logfbank``. Runs on onnxruntime.

A 1 s clip sits in the middle of the 1.5 s window (PAD_SAMPLES of silence each side); a clip's
features are its one 2,048-value vector, shape ``[1, 2048]``. The ResNet sees the whole window,
so nothing is shared between overlapping windows (no frame reuse; about 30 ms per clip on one
CPU core).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from pipeline.core.errors import ParamError
from pipeline.frontends.base import FrontEnd, onnx_session, package_models_dir

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 24000  # 1.5 s
FRAME_SAMPLES = 400  # 25 ms
HOP_SAMPLES = 160  # 10 ms
NFFT = 512
BINS = 64
EMBEDDING_DIM = 2048
MODEL_FILES = {
    "float": "slim_93%_accuracy_72.7390%.onnx",
    "int8": "slim_93%_accuracy_72.7390%_qint8.onnx",
}

_FILTERBANK: list[np.ndarray] = []


def models_dir() -> Path:
    """The folder of the efficientword-net wheel's ONNX models."""
    return package_models_dir(
        "eff_word_net",
        "efficientword-net==1.0.5",
        "models/resnet_50_arc",
        MODEL_FILES.values(),
        "word-embedding model",
    )


def frames_for_window(samples: int = WINDOW_SAMPLES) -> int:
    """python_speech_features' framing: the last frame is zero-padded."""
    return 1 if samples <= FRAME_SAMPLES else 1 + math.ceil((samples - FRAME_SAMPLES) / HOP_SAMPLES)


def filterbank() -> np.ndarray:
    """The [64, 257] triangular mel filterbank of python_speech_features (0 Hz to 8 kHz)."""
    if not _FILTERBANK:

        def hz2mel(hz):
            return 2595 * np.log10(1 + hz / 700.0)

        def mel2hz(mel):
            return 700 * (10 ** (mel / 2595.0) - 1)

        points = np.linspace(hz2mel(0), hz2mel(SAMPLE_RATE / 2), BINS + 2)
        edges = np.floor((NFFT + 1) * mel2hz(points) / SAMPLE_RATE)
        bank = np.zeros((BINS, NFFT // 2 + 1))
        for j in range(BINS):
            for i in range(int(edges[j]), int(edges[j + 1])):
                bank[j, i] = (i - edges[j]) / (edges[j + 1] - edges[j])
            for i in range(int(edges[j + 1]), int(edges[j + 2])):
                bank[j, i] = (edges[j + 2] - i) / (edges[j + 2] - edges[j + 1])
        _FILTERBANK.append(bank)
    return _FILTERBANK[0]


def log_filterbank(audio: np.ndarray) -> np.ndarray:
    """``[batch, samples]`` float audio -> ``[batch, frames, 64]`` log filterbank energies
    (float64, as the package computes them)."""
    audio = np.asarray(audio, np.float64)
    frames = frames_for_window(audio.shape[-1])
    padded = np.zeros((*audio.shape[:-1], (frames - 1) * HOP_SAMPLES + FRAME_SAMPLES))
    padded[..., : audio.shape[-1]] = audio
    windows = np.lib.stride_tricks.sliding_window_view(padded, FRAME_SAMPLES, axis=-1)[
        ..., ::HOP_SAMPLES, :
    ]
    power = np.abs(np.fft.rfft(windows, NFFT, axis=-1)) ** 2 / NFFT
    energies = power @ filterbank().T
    return np.log(np.where(energies == 0, np.finfo(float).eps, energies))


def _session(kind: str):
    return onnx_session(models_dir() / MODEL_FILES[kind])


def embed(audio: np.ndarray, kind: str = "float") -> np.ndarray:
    """``[batch, samples]`` (at most 1.5 s; centred in the window) -> ``[batch, 1, 2048]``; no
    progress bar of its own (featurize shows one over all clips, streaming one over windows)."""
    audio = np.asarray(audio, np.float32)
    if audio.shape[1] > WINDOW_SAMPLES:
        raise ValueError(f"efficientword: {audio.shape[1]} samples is longer than the 1.5 s window")
    before = (WINDOW_SAMPLES - audio.shape[1]) // 2
    session = _session(kind)
    name = session.get_inputs()[0].name
    out = np.zeros((len(audio), 1, EMBEDDING_DIM), np.float32)
    for i in range(len(audio)):
        window = np.zeros(WINDOW_SAMPLES, np.float32)
        window[before : before + audio.shape[1]] = audio[i]
        fbank = log_filterbank(window[None])[0].astype(np.float32)
        out[i, 0] = session.run(None, {name: fbank[None, None]})[0][0]
    return out


class EfficientWord(FrontEnd):
    name = "efficientword"
    description = (
        "EfficientWord-Net ResNet-50 word embedding (efficientword-net wheel, ONNX), "
        "see pipeline/frontends/efficientword.py"
    )
    in_graph = False

    def check(self, cfg) -> None:
        if cfg.sample_rate != SAMPLE_RATE:
            raise ParamError("params: features.preprocess 'efficientword' needs sample_rate 16000")
        if cfg.desired_samples > WINDOW_SAMPLES:
            raise ParamError(
                "params: features.preprocess 'efficientword' needs clips of at most 1500 ms"
            )

    def frames_for(self, cfg, samples: int) -> int:
        return 1

    def frame_width(self, cfg) -> int:
        return EMBEDDING_DIM

    def compute_numpy(self, audio: np.ndarray, cfg, batch_size: int) -> np.ndarray:
        return embed(audio)


FRONTEND = EfficientWord()
