"""What every front end is given: the clip, the analysis window slid over it, the bins per frame.

``FeatureWindow`` is the ``features`` section without the choice of front end: the keys a front
end computes from. It sits at the bottom of ``frontends/`` (it imports nothing else of it), so a
front end takes it and computes through itself; ``FeatureConfig`` (config.py) extends it with
``preprocess``, the choice of front end, and the shape that choice gives.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.clip import ClipFormat
from pipeline.core.errors import ParamError
from pipeline.core.schema import integer, number, param


@dataclass(frozen=True)
class FeatureWindow(ClipFormat):
    """The clip format, the analysis window (size and stride) and the bins asked of each frame."""

    partial = True

    window_size_ms: float = param(30, number(1, 1000))
    window_stride_ms: float = param(10, number(1, 1000))
    feature_bin_count: int = param(40, integer(1, 512))

    def __post_init__(self):
        if self.window_size_ms > self.clip_duration_ms:
            raise ParamError("params: features.window_size_ms must not exceed clip_duration_ms")
        if self.window_size_samples < 1 or self.window_stride_samples < 1:
            raise ParamError(
                "params: features.window_size_ms and window_stride_ms must give at least one "
                f"sample at {self.sample_rate} Hz"
            )

    def samples_to_ms(self, samples: int) -> float:
        return samples * 1000 / self.sample_rate

    @property
    def window_size_samples(self) -> int:
        return int(self.sample_rate * self.window_size_ms / 1000)

    @property
    def window_stride_samples(self) -> int:
        return int(self.sample_rate * self.window_stride_ms / 1000)

    def windows_in(self, samples: int) -> int:
        """Whole analysis windows in ``samples`` of audio, one every stride: 1 + (samples -
        window) // stride, or 0 when shorter than one window."""
        if samples < self.window_size_samples:
            return 0
        return 1 + (samples - self.window_size_samples) // self.window_stride_samples
