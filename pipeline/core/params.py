"""Read params.yaml and turn the sections a stage needs into typed, validated objects.

Every stage first validates the whole file (``pipeline.sections.validate_file``, run by
``pipeline.cli.run_stage``), then calls :func:`load_params` with the section classes it reads, so
a typo (``trian.batch_size``), a wrong type or an out-of-range value in any section stops it
before any work, with one line naming the file, the key and what is allowed. The section classes
live with the code that uses them (``DataConfig`` in ``pipeline.data.config``, ``FeatureConfig``
in ``pipeline.frontends``, ...); this module knows only the section names, so loading params
never imports a layer a stage does not run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pipeline.core.errors import ParamError
from pipeline.core.schema import Section, read_yaml

T = TypeVar("T")

DEFAULT_PARAMS_PATH = Path("params.yaml")
# The sections of params.yaml, in file order (tests check each has its Section class).
SECTION_NAMES = (
    "data",
    "split",
    "features",
    "augment",
    "stream_windows",
    "model",
    "train",
    "export",
    "stream",
    "stream_eval",
)


def read_params(path: str | Path = DEFAULT_PARAMS_PATH) -> dict[str, Any]:
    """The raw mapping of params.yaml, read as DVC reads it (see ``schema.read_yaml``: YAML 1.2,
    no anchors or aliases, no duplicate keys), its sections checked by name."""
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8")  # as DVC opens it
    except FileNotFoundError:
        raise ParamError(f"{path}: not found (run from the repository root)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamError(f"{path}: cannot read ({exc})") from None
    return named(path, check_section_names, read_yaml(content, source=str(path)))


def check_section_names(params: Any) -> dict[str, Any]:
    """Raise ParamError unless ``params`` is a mapping whose keys are known section names."""
    if not isinstance(params, dict):
        raise ParamError("params: the file must hold a mapping of sections")
    unknown = sorted(set(params) - set(SECTION_NAMES), key=str)
    if unknown:
        raise ParamError(
            f"params: unknown section {unknown[0]!r}; allowed: " + ", ".join(SECTION_NAMES)
        )
    return params


def named(path: str | Path, check: Callable[..., T], *args) -> T:
    """``check(*args)``, its ParamError naming the params file ``path`` instead of "params"."""
    try:
        return check(*args)
    except ParamError as exc:
        raise ParamError(f"{path}: {str(exc).removeprefix('params: ')}") from None


def section_from(params: dict[str, Any], cls: type[Section]):
    """Build section ``cls`` out of a raw params mapping (ParamError if it is missing or bad)."""
    if cls.section not in params:
        raise ParamError(f"params: missing section {cls.section!r}")
    return cls.from_dict(params[cls.section])


def load_params(path: str | Path, *sections: type[Section]):
    """The typed sections ``sections`` of the params file at ``path``, in the order asked.

    One class gives one object; several give a tuple.
    """
    params = read_params(path)
    loaded = tuple(named(path, section_from, params, cls) for cls in sections)
    return loaded[0] if len(loaded) == 1 else loaded
