"""The ``features`` section: the front end's window (window.py) plus which front end computes the
features, and the shape of one clip's features that this choice gives."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.schema import param, text
from pipeline.frontends.base import FrontEnd
from pipeline.frontends.registry import FRONTENDS, get_frontend
from pipeline.frontends.window import FeatureWindow


@dataclass(frozen=True)
class FeatureConfig(FeatureWindow):
    """Feature parameters plus the sizes derived from them (as models.prepare_model_settings)."""

    partial = False

    preprocess: str = param("mfcc", text(FRONTENDS))

    def __post_init__(self):
        super().__post_init__()
        self.frontend.check(self)

    @property
    def frontend(self) -> FrontEnd:
        return get_frontend(self.preprocess)

    @property
    def frame_count(self) -> int:
        """Frames of one clip's features (embedding windows for the speech embedding, 1 for the
        front ends that give one vector per clip)."""
        return self.frontend.frames_for(self, self.desired_samples)

    @property
    def frame_width(self) -> int:
        """Values in each frame (cepstral coefficients, pooled bins, embedding values...)."""
        return self.frontend.frame_width(self)

    @property
    def feature_shape(self) -> tuple[int, int]:
        """Shape of one clip's features: (frames, bins), or (windows, 96) for embedding."""
        return (self.frame_count, self.frame_width)
