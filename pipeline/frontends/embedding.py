"""Google's speech embedding as a fixed front end (``features.preprocess: embedding``).

The two TFLite models ship in the openwakeword 0.5.1 wheel (Apache-2.0):
``melspectrogram.tflite`` (audio -> 32 log-mel bins every 10 ms, 512-sample window) and
``embedding_model.tflite`` (76 mel frames -> 96 values). They were trained on a large amount of
speech, so a small head on top learns keywords from few real clips. The package itself is not
imported (it needs onnxruntime); only its files are located.

Recipe (checked on the shared real clips: docs/experiments/embedding-speed.md):
int16-valued float32 audio into the mel model, mel * 1/10 + 2, windows of 76 frames every 8
frames. A 1 s clip gives only 97 mel frames (3 windows), so it is padded with
PAD_SAMPLES of silence on each side to give several windows around the word.

Speed (each mel frame and each embedding computed once). The mel model is an STFT (a 400-sample
Hann window in 512), a [257, 32] mel matrix, 10*log10, and a clamp at 80 dB below the loudest
value of *everything it is given at once* -- so running it on several clips together changes
them. ``mel_db`` computes it in numpy with the model's own constants (read from the .tflite).
The embedding model is fully convolutional in time (valid convolutions, time stride 8): run on F
mel frames it returns the 1 + (F - 76) // 8 embeddings of the windows every 8 frames, each equal
to the 76-frame model's output for that window. So:

- featurize (``embed``) computes the mel of a batch of padded clips (only the frames that touch
  the clip: those wholly in the padding are one constant), clamps each clip at its own maximum
  (``clamp_scale``, as the mel model does given one clip) and runs the embedding model once per
  batch of clips ``[clips, 140, 32, 1]``: each clip's 9 windows from one call over its 140 frames
  (the 76-frame model per window would read 684). The mel of the next batch is computed in a
  second thread meanwhile. The embedding model's convolutions (about 80 M multiply-adds a clip)
  set the pace; ``bench/embedding_speed.py`` prints the breakdown
  (docs/experiments/embedding-speed.md);
- streaming (``stream_features``, or ``EmbeddingStream`` for audio given in chunks: the same
  numbers) computes the mel of the (padded) recording and runs the embedding model over it: one
  embedding every EMBEDDING_HOP_SAMPLES (80 ms), and a window starting at sample ``s`` (a
  multiple of 80 ms) is embeddings ``s // 1280 ... + 8``. A streamed window therefore sees the
  recording's own 250 ms of context where a training clip sees PAD_SAMPLES of silence;
  ``reference_embed(..., pad=0)`` over the same context gives the same numbers
  (tests/test_embedding_frontend.py) where no clamp applies.

The streaming clamp is causal (``causal_clamp_scale``): each mel frame is clamped at top_db below
the running maximum of the frame maxima from the recording's start (its leading padding
included), not below the maximum of the whole recording as the mel model would clamp a recording
given at once. A recording's future is unknown to live audio, and holding a whole recording for
its maximum would make memory grow with its length; with the running maximum a stream needs only
a few frames of state. The two rules differ only on frames more than 80 dB below the loudest
frame so far (digital silence before the first sound, a long near-silent stretch before a loud
one), where the whole-input rule would have raised them to the later maximum less 80 dB.

``features.preprocess: embedding_int8`` is the same front end with an int8 embedding model (see
INT8_MODEL below): faster to featurize, its features a little off the float model's.

``reference_embed`` keeps the original computation (one mel call per clip, one 76-frame embedding
call per window) as the reference the tests and ``bench/embedding_speed.py`` compare against.

Not TensorFlow ops (two TFLite models), so it cannot live inside an exported graph: the export is
a bundle that ``pipeline.inference`` runs with this module.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import scipy.fft

from pipeline.core.errors import ParamError
from pipeline.core.tf import tflite_interpreter
from pipeline.frontends.base import (
    VIEW_HIGH,
    VIEW_LOW,
    FrameStream,
    FrontEnd,
    onnx_session,
    package_models_dir,
)

EMBEDDING_DIM = 96
MEL_BINS = 32
MEL_WINDOW_SAMPLES = 512
MEL_HOP_SAMPLES = 160
WINDOW_FRAMES = 76
WINDOW_STEP_FRAMES = 8
# One embedding every 8 mel frames: 1,280 samples, 80 ms at 16 kHz.
EMBEDDING_HOP_SAMPLES = WINDOW_STEP_FRAMES * MEL_HOP_SAMPLES
# 0.25 s of silence each side of the clip (9 windows): more accurate than no padding (3 windows)
# and than 0.5 s (16 windows), at half the cost of 0.5 s (docs/experiments/embedding-speed.md).
PAD_SAMPLES = 4000
MODEL_FILES = ("melspectrogram.tflite", "embedding_model.tflite")
# Mel frames per model call (about 78 s of audio): bounds memory on long recordings; a call's
# frames equal those of one call over everything (the models are local).
SEGMENT_FRAMES = 7808
# Mel frames per matrix product in streaming (``stream_mel_db``).
STREAM_MEL_ROWS = 32
# Clips per embedding-model call in featurize (and per mel batch), and clips per numpy mel block
# (its arrays stay in cache). 128 a call is faster than 32; a batch of clips costs less CPU per
# clip than one call over clips laid end to end (152 frames a clip instead of 140) and than
# onnxruntime on the wheel's embedding_model.onnx (its time axis made dynamic); figures in
# docs/experiments/embedding-speed.md.
CLIPS_PER_CALL = 128
MEL_BLOCK = 16
# TFLite threads of the embedding model (the mel of the next batch runs in a thread alongside).
# 2 threads are faster than 1 on a quiet machine and no slower on a loaded one
# (docs/experiments/embedding-speed.md). The features are identical either way.
MODEL_THREADS = 2
# The int8 model (``features.preprocess: embedding_int8``): the wheel's embedding_model.onnx with a
# free time axis, statically quantized (calibrated on real speech) by
# ``python -m pipeline.tools.quantize_embedding``, committed next to this module (Apache-2.0,
# assets/NOTICE), run by onnxruntime. Featurize runs INT8_WORKERS threads, each taking
# INT8_CLIPS_PER_CALL clips at a time through mel and model (a one-thread session), with numpy's
# BLAS held to one thread (its own threads fought the workers for the two cores). Not taken, as
# slower: the float path's layout (the mel of the next batch in a second thread while the model
# runs on 2 threads), 128 clips a call (figures in docs/experiments/embedding-speed.md). One call
# over a long recording (streaming) uses INT8_THREADS threads. The int8 features do not depend on
# threads or batch.
INT8_MODEL = "embedding_model_int8.onnx"
INT8_THREADS = 2
INT8_WORKERS = 2
INT8_CLIPS_PER_CALL = 64
PRECISIONS = ("float", "int8")
# Interpreters kept per (model, input shape); resizing one costs more than a call.
_CACHE_SIZE = 8
_INTERPRETERS: OrderedDict = OrderedDict()


def models_dir() -> Path:
    """The folder of the openwakeword wheel's TFLite models."""
    return package_models_dir(
        "openwakeword",
        "openwakeword==0.5.1",
        "resources/models",
        MODEL_FILES,
        "speech-embedding model",
    )


def int8_model_path(must_exist: bool = True) -> Path:
    """The committed int8 embedding model (see pipeline/tools/quantize_embedding.py)."""
    path = Path(__file__).resolve().parent / "assets" / INT8_MODEL
    if must_exist and not path.is_file():
        raise FileNotFoundError(
            f"{path}: int8 embedding model missing (python -m pipeline.tools.quantize_embedding)"
        )
    return path


def mel_frames_for(samples: int) -> int:
    padded = samples + 2 * PAD_SAMPLES
    return _frames_of(padded)


def _frames_of(samples: int) -> int:
    return (
        0 if samples < MEL_WINDOW_SAMPLES else 1 + (samples - MEL_WINDOW_SAMPLES) // MEL_HOP_SAMPLES
    )


def _windows_of(frames: int) -> int:
    return 0 if frames < WINDOW_FRAMES else 1 + (frames - WINDOW_FRAMES) // WINDOW_STEP_FRAMES


def windows_for(samples: int) -> int:
    """Embedding windows that ``samples`` of audio give (after padding)."""
    return _windows_of(mel_frames_for(samples))


def clip_input_frames(samples: int) -> int:
    """Mel frames of a padded clip of ``samples`` that its windows read:
    ``(windows - 1) * 8 + 76``."""
    return (windows_for(samples) - 1) * WINDOW_STEP_FRAMES + WINDOW_FRAMES


def clip_model_input(audio: np.ndarray, frames: int, view: float = 1.0) -> np.ndarray:
    """``[clips, samples]`` -> the embedding model's input ``[clips, frames, 32, 1]``: each clip
    padded, its dB mel clamped at its own maximum and scaled (what featurize feeds the model)."""
    return clamp_scale(padded_clip_db(audio, frames, view))[..., None]


def _interpreter(name: str, shape: tuple[int, ...]):
    key = (name, shape, MODEL_THREADS)
    if key in _INTERPRETERS:
        _INTERPRETERS.move_to_end(key)
        return _INTERPRETERS[key]
    interp = tflite_interpreter(model_path=str(models_dir() / name), num_threads=MODEL_THREADS)
    inp = interp.get_input_details()[0]
    if tuple(inp["shape"]) != shape:
        interp.resize_tensor_input(inp["index"], list(shape))
    interp.allocate_tensors()
    _INTERPRETERS[key] = interp
    while len(_INTERPRETERS) > _CACHE_SIZE:
        _INTERPRETERS.popitem(last=False)
    return interp


def _run(name: str, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, np.float32)
    interp = _interpreter(name, tuple(x.shape))
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"]).copy()


def run_embedding_model(
    spec: np.ndarray, precision: str = "float", threads: int | None = None
) -> np.ndarray:
    """Scaled mel ``[clips, frames, 32, 1]`` -> ``[clips, windows, 96]``: the float TFLite model or
    the int8 ONNX model (on ``threads``, default INT8_THREADS; the result does not depend on it),
    each returning every window of 76 frames every 8 (see the module docstring)."""
    spec = np.ascontiguousarray(spec, np.float32)
    if precision == "float":
        out = _run("embedding_model.tflite", spec)
    elif precision == "int8":
        session = onnx_session(int8_model_path(), threads or INT8_THREADS, spinning=False)
        out = session.run(None, {session.get_inputs()[0].name: spec})[0]
    else:
        raise ValueError(
            f"embedding precision {precision!r}: expected one of {', '.join(PRECISIONS)}"
        )
    return out.reshape(len(spec), -1, EMBEDDING_DIM)


def _int16_valued(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(audio, np.float32) * 32768.0), -32768, 32767).astype(
        np.float32
    )


_MEL_CONSTANTS: dict[str, np.ndarray] = {}


def mel_constants() -> dict[str, np.ndarray]:
    """The mel model's own constants, read from melspectrogram.tflite: its 512-sample window (a
    400-sample Hann window inside 512, from its real/imaginary DFT kernels), its [257, 32] mel
    matrix (DC bin unused), the power floor, the dB factor and the top-dB range."""
    if not _MEL_CONSTANTS:
        interp = tflite_interpreter(model_path=str(models_dir() / "melspectrogram.tflite"))
        interp.allocate_tensors()
        tensors = {t["name"]: t["index"] for t in interp.get_tensor_details()}

        def const(name):
            return np.asarray(interp.get_tensor(tensors[name]), np.float64)

        real = const("convolution_1").reshape(257, MEL_WINDOW_SAMPLES)
        imag = const("convolution1").reshape(257, MEL_WINDOW_SAMPLES)
        dc = np.ones(257)
        dc[0] = float(np.abs(real[0]).max() > 0)  # whether the model's DFT keeps the DC bin
        _MEL_CONSTANTS.update(
            window=np.sqrt(real[1] ** 2 + imag[1] ** 2).astype(np.float32),
            # The same rows doubled, for interleaved (real, imaginary) squares; DC as the model.
            matrix2=np.repeat(const("Const_3") * dc[:, None], 2, axis=0).astype(np.float32),
            floor=np.float32(const("Const_4")),
            db=np.float32(
                const("onnx_tf_prefix_Constant_16")
                * const("onnx_tf_prefix_Div_19;onnx_tf_prefix_Constant_18")
            ),
            top_db=np.float32(const("onnx_tf_prefix_Constant_23")),
        )
    return _MEL_CONSTANTS


_VIEW_MATRICES: dict[float, np.ndarray] = {}


def view_matrix2(view: float = 1.0) -> np.ndarray:
    """``matrix2`` of the mel model for the input heard ``view`` times higher (a vocal-tract
    view, see ``check_view``): each mel filter reads the power spectrum at its own frequencies
    divided by ``view``, linearly interpolated between FFT bins, nothing above the Nyquist bin.
    View 1.0 is the model's own matrix, exactly."""
    c = mel_constants()
    if view == 1.0:
        return c["matrix2"]
    if view not in _VIEW_MATRICES:
        base = c["matrix2"][0::2].astype(np.float64)  # [257, 32]
        last = len(base) - 1
        # Input bin j counts as bin j * view of a voice heard view times higher.
        source = np.arange(len(base)) * float(view)
        inside = source <= last
        lo = np.floor(source[inside]).astype(int)
        hi = np.minimum(lo + 1, last)
        weight = (source[inside] - lo)[:, None]
        matrix = np.zeros_like(base)
        matrix[inside] = (1.0 - weight) * base[lo] + weight * base[hi]
        _VIEW_MATRICES[view] = np.repeat(matrix, 2, axis=0).astype(np.float32)
    return _VIEW_MATRICES[view]


def check_view(view: float) -> float:
    """A vocal-tract view factor: the mel of the input as if said by a voice whose spectrum is
    ``view`` times higher (formants and pitch together, timing unchanged). Within
    VIEW_LOW-VIEW_HIGH."""
    view = float(view)
    if not VIEW_LOW <= view <= VIEW_HIGH:
        raise ValueError(f"view {view:g} is outside {VIEW_LOW:g}-{VIEW_HIGH:g}")
    return view


def _db_of_windows(windows: np.ndarray, view: float = 1.0) -> np.ndarray:
    """int16-valued frames ``[..., 512]`` -> log-mel dB ``[..., 32]``: window, rfft (float32), power
    as the squares of the interleaved real and imaginary parts times the mel matrix with each row
    doubled (no separate power array; ``view_matrix2(view)``), floor, dB."""
    c = mel_constants()
    spectrum = scipy.fft.rfft(windows * c["window"], axis=-1)
    squares = spectrum.view(np.float32)
    np.square(squares, out=squares)
    mel = squares.reshape(-1, squares.shape[-1]) @ view_matrix2(view)
    return c["db"] * np.log(np.maximum(mel, c["floor"])).reshape(*windows.shape[:-1], MEL_BINS)


def _framed(values: np.ndarray, first: int, count: int) -> np.ndarray:
    """Frames ``first .. first + count - 1`` of ``values [..., samples]`` as a strided view."""
    windows = np.lib.stride_tricks.sliding_window_view(values, MEL_WINDOW_SAMPLES, axis=-1)
    return windows[
        ...,
        first * MEL_HOP_SAMPLES : (first + count - 1) * MEL_HOP_SAMPLES + 1 : MEL_HOP_SAMPLES,
        :,
    ]


def mel_db(audio: np.ndarray, view: float = 1.0) -> np.ndarray:
    """Unpadded audio ``[..., samples]`` in [-1, 1] -> log-mel dB ``[..., frames, 32]`` before the
    top-dB clamp: the mel model's computation in numpy (frame-local, batch-independent)."""
    values = _int16_valued(audio)
    return _db_of_windows(_framed(values, 0, _frames_of(values.shape[-1])), view)


def silence_db() -> np.float32:
    """The dB value of a frame of digital silence (power 0 -> the power floor)."""
    c = mel_constants()
    return (c["db"] * np.log(np.maximum(np.zeros(1, np.float32), c["floor"])))[0]


def padded_clip_db(audio: np.ndarray, frames: int, view: float = 1.0) -> np.ndarray:
    """Clips ``[batch, samples]`` padded with PAD_SAMPLES of silence each side -> the dB of their
    first ``frames`` mel frames ``[batch, frames, 32]`` (``mel_db`` of the padded clips, cut).

    Frames that lie wholly in the padding are digital silence, the same constant for every clip,
    so only the frames that touch the clip are transformed (about 30% fewer for a 1 s clip)."""
    batch, samples = audio.shape
    out = np.empty((batch, frames, MEL_BINS), np.float32)
    # Frame f covers padded samples [f * 160, f * 160 + 512); the clip is [PAD, PAD + samples).
    first = min(frames, max(0, (PAD_SAMPLES - MEL_WINDOW_SAMPLES) // MEL_HOP_SAMPLES + 1))
    last = min(frames, -(-(PAD_SAMPLES + samples) // MEL_HOP_SAMPLES))  # first frame wholly after
    out[:, :first] = silence_db()
    out[:, last:] = silence_db()
    if last > first:
        lo = first * MEL_HOP_SAMPLES
        hi = (last - 1) * MEL_HOP_SAMPLES + MEL_WINDOW_SAMPLES
        values = np.zeros((batch, hi - lo), np.float32)
        # The clip's samples within [lo, hi) of the padded signal.
        a, b = max(lo, PAD_SAMPLES), min(hi, PAD_SAMPLES + samples)
        values[:, a - lo : b - lo] = _int16_valued(audio[:, a - PAD_SAMPLES : b - PAD_SAMPLES])
        for start in range(0, batch, MEL_BLOCK):  # blocks small enough to stay in cache
            out[start : start + MEL_BLOCK, first:last] = _db_of_windows(
                _framed(values[start : start + MEL_BLOCK], 0, last - first), view
            )
    return out


def clamp_scale(db: np.ndarray, axes=(-2, -1)) -> np.ndarray:
    """The mel model's last steps: clamp at ``top_db`` below the maximum over ``axes`` (the model
    takes the maximum over everything it is given at once), then the recipe's * 1/10 + 2."""
    c = mel_constants()
    floor = db.max(axis=axes, keepdims=True) - c["top_db"]
    return (np.maximum(db, floor) / 10.0 + 2.0).astype(np.float32)


def embeddings_of(spec: np.ndarray, precision: str = "float") -> np.ndarray:
    """Scaled mel ``[frames, 32]`` -> the embeddings of its windows every 8 frames
    ``[1 + (frames - 76) // 8, 96]``, one fully convolutional call per segment."""
    total = _windows_of(len(spec))
    per_call = _windows_of(SEGMENT_FRAMES)
    parts = []
    for first in range(0, total, per_call):
        count = min(per_call, total - first)
        start = first * WINDOW_STEP_FRAMES
        piece = spec[start : start + (count - 1) * WINDOW_STEP_FRAMES + WINDOW_FRAMES]
        parts.append(run_embedding_model(piece[None, :, :, None], precision)[0])
    return np.concatenate(parts) if parts else np.zeros((0, EMBEDDING_DIM), np.float32)


def embed(
    audio: np.ndarray, progress: bool = False, precision: str = "float", view: float = 1.0
) -> np.ndarray:
    """``[batch, samples]`` audio -> ``[batch, windows, 96]`` speech embeddings (float32) of the
    vocal-tract ``view`` (``view_matrix2``; 1.0: the audio as it is).

    Batched: ``CLIPS_PER_CALL`` clips at a time, the dB mel of each padded clip (numpy, only the
    frames that touch the clip transformed; clamped at the clip's own maximum as the mel model
    does), cut to the ``(windows - 1) * 8 + 76`` frames its windows use, go through one embedding
    call of shape ``[clips, frames, 32, 1]`` (the model is convolutional in time: it returns all
    of a clip's windows at once). The mel of the next batch is computed in a second thread while
    the embedding model runs (both release the GIL), so on two cores the slower of the two sets
    the pace (see bench/embedding_speed.py). numpy's BLAS is held to one thread meanwhile: its
    own threads fought the model's for the two cores (faster, the features bit-identical:
    docs/experiments/embedding-speed.md).
    """
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    audio = np.asarray(audio, np.float32)
    samples = audio.shape[1]
    windows = windows_for(samples)
    if windows < 1:
        raise ValueError(f"embedding: {samples} samples is too short for one window")
    frames = clip_input_frames(samples)
    if precision != "float":
        return _embed_workers(audio, frames, windows, progress, precision, view)

    def scaled_mel(first: int) -> np.ndarray:
        return clip_model_input(audio[first : first + CLIPS_PER_CALL], frames, view)

    out = np.empty((len(audio), windows, EMBEDDING_DIM), np.float32)
    starts = range(0, len(audio), CLIPS_PER_CALL)
    with (
        tqdm(
            total=len(audio),
            desc="speech embedding",
            unit="clip",
            disable=not progress,
            leave=False,
        ) as bar,
        threadpool_limits(limits=1, user_api="blas"),
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        pending = pool.submit(scaled_mel, 0) if len(audio) else None
        for first in starts:
            spec = pending.result()
            if first + CLIPS_PER_CALL < len(audio):
                pending = pool.submit(scaled_mel, first + CLIPS_PER_CALL)
            out[first : first + len(spec)] = run_embedding_model(spec, precision)
            bar.update(len(spec))
    return out


def _embed_workers(
    audio: np.ndarray, frames: int, windows: int, progress: bool, precision: str, view: float
) -> np.ndarray:
    """``embed`` for the int8 model: INT8_WORKERS threads, each taking INT8_CLIPS_PER_CALL clips
    at a time through the mel (numpy) and the model (a one-thread onnxruntime session); numpy's
    BLAS is held to one thread meanwhile. The features do not depend on the split."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits
    from tqdm import tqdm

    out = np.empty((len(audio), windows, EMBEDDING_DIM), np.float32)

    def work(first: int) -> int:
        spec = clip_model_input(audio[first : first + INT8_CLIPS_PER_CALL], frames, view)
        out[first : first + len(spec)] = run_embedding_model(spec, precision, threads=1)
        return len(spec)

    with (
        tqdm(
            total=len(audio),
            desc="speech embedding (int8)",
            unit="clip",
            disable=not progress,
            leave=False,
        ) as bar,
        threadpool_limits(limits=1, user_api="blas"),
        ThreadPoolExecutor(max_workers=INT8_WORKERS) as pool,
    ):
        for done in pool.map(work, range(0, len(audio), INT8_CLIPS_PER_CALL)):
            bar.update(done)
    return out


def reference_embed(
    audio: np.ndarray, pad: int = PAD_SAMPLES, precision: str = "float"
) -> np.ndarray:
    """The plain computation ``embed`` must equal: per clip one mel call over the clip padded with
    ``pad`` samples of silence each side, per window one call of the 76-frame embedding model.

    The mel: the mel model itself for the float model. For the int8 model the mel of the whole
    padded clip comes from ``mel_db`` (numpy; equal to the mel model's within 1e-3, see
    tests/test_embedding_frontend.py): the int8 model rounds its input to steps of 0.052, so the
    two mel computations' ~1e-4 differences flip a rounding now and then, and the flip can move an
    embedding value by a few units (2.6 seen over 64 real clips) -- a difference of mel code, not
    of what this reference checks (windows, batching, workers)."""
    audio = np.asarray(audio, np.float32)
    rows = []
    for clip in audio:
        padded = np.pad(clip, (pad, pad))
        if precision == "float":
            spec = _run("melspectrogram.tflite", _int16_valued(padded)[None, :])[0, 0] / 10.0 + 2.0
        else:
            spec = clamp_scale(mel_db(padded))
        count = _windows_of(len(spec))
        rows.append(
            [
                run_embedding_model(
                    spec[
                        None,
                        w * WINDOW_STEP_FRAMES : w * WINDOW_STEP_FRAMES + WINDOW_FRAMES,
                        :,
                        None,
                    ],
                    precision,
                ).reshape(EMBEDDING_DIM)
                for w in range(count)
            ]
        )
    return np.asarray(rows, np.float32).reshape(len(audio), -1, EMBEDDING_DIM)


def context_window(recording: np.ndarray, start: int, samples: int) -> np.ndarray:
    """The window ``recording[start : start + samples]`` with PAD_SAMPLES of its context each side
    (silence beyond the recording's ends): what a streamed window's embeddings see."""
    padded = np.pad(np.asarray(recording, np.float32).reshape(-1), (PAD_SAMPLES, PAD_SAMPLES))
    return padded[start : start + samples + 2 * PAD_SAMPLES]


def causal_clamp_scale(db: np.ndarray, running_max: float = -np.inf) -> tuple[np.ndarray, float]:
    """Streaming's clamp (the module docstring): mel dB frames ``[frames, 32]`` that follow frames
    whose loudest value was ``running_max`` -> each frame clamped at top_db below the running
    maximum of the frame maxima up to it, scaled as ``clamp_scale``; and the running maximum after
    the last frame (for the frames that follow)."""
    c = mel_constants()
    if len(db) == 0:
        return np.zeros((0, MEL_BINS), np.float32), running_max
    loudest = np.maximum.accumulate(np.maximum(db.max(axis=-1), np.float32(running_max)))
    floor = (loudest - c["top_db"])[:, None]
    return (np.maximum(db, floor) / 10.0 + 2.0).astype(np.float32), float(loudest[-1])


def stream_mel_db(audio: np.ndarray, first: int = 0, view: float = 1.0) -> np.ndarray:
    """``mel_db`` of every frame of ``audio`` (1-D), whose frame 0 is frame ``first`` of the
    (padded) recording, computed so that each frame's numbers depend on its own samples and its
    number alone, not on how the recording is cut: in blocks of STREAM_MEL_ROWS frames at
    multiples of STREAM_MEL_ROWS, every block the same shape (missing frames zero). BLAS may sum
    a row of a matrix product in another order depending on the product's shape and the row's
    place in it (as OpenBLAS does on AVX2 CPUs), and so may numpy's vectorized log."""
    values = _int16_valued(np.asarray(audio, np.float32).reshape(-1))
    count = _frames_of(len(values))
    out = np.empty((count, MEL_BINS), np.float32)
    block = np.zeros((STREAM_MEL_ROWS, MEL_WINDOW_SAMPLES), np.float32)
    for start in range(-(first % STREAM_MEL_ROWS), count, STREAM_MEL_ROWS):
        lo, hi = max(start, 0), min(start + STREAM_MEL_ROWS, count)
        block[:] = 0.0
        block[lo - start : hi - start] = _framed(values, lo, hi - lo)
        out[lo:hi] = _db_of_windows(block, view)[lo - start : hi - start]
    return out


def stream_features(
    recording: np.ndarray, precision: str = "float", view: float = 1.0
) -> np.ndarray:
    """A whole recording -> its embeddings every 80 ms ``[n, 96]``; embedding ``i`` is the first
    window of the clip starting at sample ``i * EMBEDDING_HOP_SAMPLES`` (in its context). The mel
    frames are clamped causally (``causal_clamp_scale``); ``EmbeddingStream`` gives the same
    embeddings for the recording given in chunks."""
    padded = np.pad(np.asarray(recording, np.float32).reshape(-1), (PAD_SAMPLES, PAD_SAMPLES))
    return embeddings_of(causal_clamp_scale(stream_mel_db(padded, 0, view))[0], precision)


class EmbeddingStream(FrameStream):
    """``stream_features`` of a recording given in chunks of any size, in bounded memory: the
    audio of the next mel frame not computed yet (less than a frame's 512 samples), the scaled mel
    frames of the next embedding window not computed yet (76 frames and those waiting), and the
    running maximum of the clamp. The recording starts with PAD_SAMPLES of silence (held from the
    start) and ``finish`` adds the trailing PAD_SAMPLES.

    ``push`` computes the mel of every whole frame at once (numpy) and the embeddings in calls of
    ``windows_per_call`` windows (fewer calls, one shape), or every window ready when ``now``."""

    def __init__(self, precision: str = "float", windows_per_call: int = 64, view: float = 1.0):
        self.precision = precision
        self.view = view
        self.windows_per_call = max(1, int(windows_per_call))
        self.audio = np.zeros(PAD_SAMPLES, np.float32)  # from the next mel frame's first sample
        self.mel = np.zeros((0, MEL_BINS), np.float32)  # from the next window's first frame
        self.running_max = -np.inf
        self.frames = 0  # mel frames computed so far
        self.finished = False

    def push(self, audio: np.ndarray, now: bool = False) -> np.ndarray:
        if self.finished:
            raise ValueError("EmbeddingStream: audio pushed after finish")
        self.audio = np.concatenate([self.audio, np.asarray(audio, np.float32).reshape(-1)])
        frames = _frames_of(len(self.audio))
        if frames:
            scaled, self.running_max = causal_clamp_scale(
                stream_mel_db(self.audio, self.frames, self.view), self.running_max
            )
            self.mel = np.concatenate([self.mel, scaled])
            self.audio = self.audio[frames * MEL_HOP_SAMPLES :]
            self.frames += frames
        windows = _windows_of(len(self.mel))
        if not now:  # whole calls of windows_per_call (one model shape, kept)
            windows = windows // self.windows_per_call * self.windows_per_call
        if windows == 0:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        out = embeddings_of(
            self.mel[: (windows - 1) * WINDOW_STEP_FRAMES + WINDOW_FRAMES], self.precision
        )
        self.mel = self.mel[windows * WINDOW_STEP_FRAMES :]
        return out

    def finish(self) -> np.ndarray:
        out = self.push(np.zeros(PAD_SAMPLES, np.float32), now=True)
        self.finished = True
        return out


class SpeechEmbedding(FrontEnd):
    name = "embedding"
    description = (
        "Google speech embedding (openwakeword melspectrogram.tflite -> embedding_model.tflite), "
        "see pipeline/frontends/embedding.py"
    )
    in_graph = False
    # Streaming slices a recording's embeddings (one per 80 ms); windows keep their real context.
    frame_reuse = True
    precision = "float"
    supports_views = True

    def __init__(self, view: float = 1.0):
        self.view = check_view(view)

    def with_view(self, view: float) -> SpeechEmbedding:
        return self if float(view) == self.view else type(self)(view)

    def check(self, cfg) -> None:
        if cfg.sample_rate != 16000:
            raise ParamError(f"params: features.preprocess {self.name!r} needs sample_rate 16000")

    def frames_for(self, cfg, samples: int) -> int:
        return windows_for(samples)

    def frame_width(self, cfg) -> int:
        return EMBEDDING_DIM

    def compute_numpy(self, audio: np.ndarray, cfg, batch_size: int) -> np.ndarray:
        return embed(audio, precision=self.precision, view=self.view)

    def stream_stride_samples(self, cfg) -> int:
        return EMBEDDING_HOP_SAMPLES

    def stream_features(self, audio: np.ndarray, cfg) -> np.ndarray:
        return stream_features(audio, self.precision, self.view)

    def frame_stream(self, cfg) -> EmbeddingStream:
        return EmbeddingStream(self.precision, view=self.view)


class SpeechEmbeddingInt8(SpeechEmbedding):
    """The same front end with the int8 embedding model (the mel is unchanged)."""

    name = "embedding_int8"
    description = (
        "Google speech embedding with the embedding model statically quantized to int8 "
        "(assets/embedding_model_int8.onnx on onnxruntime), see pipeline/frontends/embedding.py"
    )
    precision = "int8"


FRONTEND = SpeechEmbedding()
FRONTEND_INT8 = SpeechEmbeddingInt8()
