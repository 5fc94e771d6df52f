"""Every section of params.yaml with its typed class: the whole parameter schema in one table.

Stages load only the sections they read (``pipeline.core.params.load_params``), so that loading
params never imports a layer the stage does not run. This table, which imports every layer, is for
what deals with a whole params file: :func:`validate_file`, which every stage runs before it does
anything (``pipeline.cli.run_stage``) and ``kws check`` runs alone, so that a bad key of a late
stage stops the first stage that runs; checking a preset; tests.

Rules within one section live in its class (``__post_init__``); the rules relating keys of
different sections live here, in :func:`check_across`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.core.errors import ParamError
from pipeline.core.params import (
    SECTION_NAMES,
    check_section_names,
    named,
    read_params,
    section_from,
)
from pipeline.core.schema import Section
from pipeline.data.augment import AugmentConfig
from pipeline.data.config import DataConfig, SplitConfig
from pipeline.data.stream_synthesis import StreamConfig
from pipeline.data.stream_windows import StreamWindowsConfig, stride_samples
from pipeline.export.config import ExportConfig
from pipeline.frontends import FeatureConfig
from pipeline.frontends.base import check_views
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
        ExportConfig,
        StreamConfig,
        StreamEvalConfig,
    )
}


def validate_params(params: Any, sections=None) -> dict[str, Section]:
    """Check a whole params mapping (or only ``sections``); the typed sections by name.

    The whole mapping also gets the rules across sections (:func:`check_across`).
    """
    check_section_names(params)
    names = (
        [name for name in SECTION_NAMES if name in SECTIONS] if sections is None else list(sections)
    )
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        raise ParamError(f"params: unknown section {unknown[0]!r}")
    typed = {name: section_from(params, SECTIONS[name]) for name in names}
    if sections is None:
        check_across(typed)
    return typed


def validate_file(path: str | Path) -> dict[str, Section]:
    """Check the whole params file at ``path`` as every stage does before it starts: YAML as DVC
    reads it (no anchors, aliases or duplicate keys), no unknown section, every key of every
    section, and the rules across sections. ParamError names the file, the key and the problem."""
    return named(path, validate_params, read_params(path))


def check_across(typed: dict[str, Section]) -> None:
    """The rules relating keys of different sections (each section's own are in its class)."""
    features, augment = typed["features"], typed["augment"]
    stream, windows = typed["stream"], typed["stream_windows"]
    # A shift as long as the clip leaves nothing of it (and longer ones cannot be cut).
    if augment.time_shift_ms >= features.clip_duration_ms:
        raise ParamError(
            f"params: augment.time_shift_ms ({augment.time_shift_ms}) must be below "
            f"features.clip_duration_ms ({features.clip_duration_ms})"
        )
    try:
        check_views(typed["export"].views, "params: export.views", features.frontend)
    except ValueError as exc:
        raise ParamError(str(exc)) from None
    if windows.streams:
        # Those recordings take the stream section's makeup at stream_windows.duration_s, and
        # their windows are cut at whole frames of the front end.
        stream.check_segment_fits(windows.duration_s, "stream_windows.duration_s")
        stride_samples(windows, features)


def defaults() -> dict[str, dict[str, Any]]:
    """The default params, section by section (what params.yaml ships with)."""
    return {name: cls().to_dict() for name, cls in SECTIONS.items()}
