"""The ``features`` section: which front end and its window, plus the sizes derived from them."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.clip import ClipFormat
from pipeline.core.errors import ParamError
from pipeline.core.schema import integer, number, param, text
from pipeline.frontends.base import FrontEnd
from pipeline.frontends.registry import FRONTENDS, get_frontend


@dataclass(frozen=True)
class FeatureConfig(ClipFormat):
    """Feature parameters plus the sizes derived from them (as models.prepare_model_settings)."""

    partial = False

    window_size_ms: float = param(30, number(1, 1000))
    window_stride_ms: float = param(10, number(1, 1000))
    feature_bin_count: int = param(40, integer(1, 512))
    preprocess: str = param("mfcc", text(FRONTENDS))

    def __post_init__(self):
        if self.window_size_ms > self.clip_duration_ms:
            raise ParamError("params: features.window_size_ms must not exceed clip_duration_ms")
        if self.window_size_samples < 1 or self.window_stride_samples < 1:
            raise ParamError(
                "params: features.window_size_ms and window_stride_ms must give at least one "
                f"sample at {self.sample_rate} Hz"
            )
        self.frontend.check(self)

    @property
    def frontend(self) -> FrontEnd:
        return get_frontend(self.preprocess)

    def samples_to_ms(self, samples: int) -> float:
        return samples * 1000 / self.sample_rate

    @property
    def window_size_samples(self) -> int:
        return int(self.sample_rate * self.window_size_ms / 1000)

    @property
    def window_stride_samples(self) -> int:
        return int(self.sample_rate * self.window_stride_ms / 1000)

    def frames_for(self, samples: int) -> int:
        return self.frontend.frames_for(self, samples)

    @property
    def spectrogram_length(self) -> int:
        return self.frames_for(self.desired_samples)

    @property
    def fingerprint_width(self) -> int:
        return self.frontend.width(self)

    @property
    def feature_shape(self) -> tuple[int, int]:
        """Shape of one clip's features: (frames, bins), or (windows, 96) for embedding."""
        return (self.spectrogram_length, self.fingerprint_width)
