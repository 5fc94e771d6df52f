"""Read params.yaml and turn the sections a stage needs into typed, validated objects.

Every stage calls :func:`load_params` first with the section classes it reads, so a typo
(``trian.batch_size``), a wrong type or an out-of-range value stops it before any work, with a
message naming the key and what is allowed. The section classes live with the code that uses
them (``DataConfig`` in ``pipeline.data.config``, ``FeatureConfig`` in ``pipeline.frontends``,
...); this module knows only the section names, so loading params never imports a layer a stage
does not run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.core.errors import ParamError
from pipeline.core.schema import Section, read_yaml

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
    "stream",
    "stream_eval",
)


def read_params(path: str | Path = DEFAULT_PARAMS_PATH) -> dict[str, Any]:
    """The raw mapping of params.yaml (YAML 1.2, as DVC reads it), sections checked by name."""
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamError(f"params: {path} not found (run from the repository root)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamError(f"params: cannot read {path} ({exc})") from None
    try:
        params = read_yaml(content)
    except yaml.YAMLError as exc:
        raise ParamError(f"params: {path} is not valid YAML: {exc}") from None
    return check_section_names(params)


def check_section_names(params: Any) -> dict[str, Any]:
    """Raise ParamError unless ``params`` is a mapping whose keys are known section names."""
    if not isinstance(params, dict):
        raise ParamError("params: the file must hold a mapping of sections")
    unknown = sorted(set(params) - set(SECTION_NAMES))
    if unknown:
        raise ParamError(
            f"params: unknown section {unknown[0]!r}; allowed: " + ", ".join(SECTION_NAMES)
        )
    return params


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
    loaded = tuple(section_from(params, cls) for cls in sections)
    return loaded[0] if len(loaded) == 1 else loaded
