"""Every section of params.yaml with its typed class: the whole parameter schema in one table.

Stages load only the sections they read (``pipeline.core.params.load_params``), so that loading
params never imports a layer the stage does not run. This table, which imports every layer, is for
the tools and tests that deal with a whole params file (validating it, checking a preset).
"""

from __future__ import annotations

from typing import Any

from pipeline.core.errors import ParamError
from pipeline.core.params import SECTION_NAMES, check_section_names, section_from
from pipeline.core.schema import Section
from pipeline.data.augment import AugmentConfig
from pipeline.data.config import DataConfig, SplitConfig
from pipeline.data.stream_synthesis import StreamConfig
from pipeline.data.stream_windows import StreamWindowsConfig
from pipeline.frontends import FeatureConfig
from pipeline.models.config import ModelConfig
from pipeline.streaming.config import StreamEvalConfig
from pipeline.training.config import TrainConfig

SECTIONS: dict[str, type[Section]] = {
    cls.section: cls
    for cls in (
        DataConfig,
        SplitConfig,
        FeatureConfig,
        AugmentConfig,
        StreamWindowsConfig,
        ModelConfig,
        TrainConfig,
        StreamConfig,
        StreamEvalConfig,
    )
}


def validate_params(params: Any, sections=None) -> dict[str, Section]:
    """Check a whole params mapping (or only ``sections``); the typed sections by name."""
    check_section_names(params)
    names = (
        [name for name in SECTION_NAMES if name in SECTIONS] if sections is None else list(sections)
    )
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        raise ParamError(f"params: unknown section {unknown[0]!r}")
    return {name: section_from(params, SECTIONS[name]) for name in names}


def defaults() -> dict[str, dict[str, Any]]:
    """The default params, section by section (what params.yaml ships with)."""
    return {name: cls().to_dict() for name, cls in SECTIONS.items()}
