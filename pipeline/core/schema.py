"""Typed params sections: one frozen dataclass per section of params.yaml, validated on load.

Each field of a section declares its default and its rule (:class:`Spec`) in one place, so the
section class is the single source of truth for a key: its type, its allowed values, its default
(``params.yaml`` holds the same defaults; a test keeps the two equal). ``Section.from_dict``
rejects an unknown, missing, mistyped or out-of-range key with a :class:`ParamError` that names
it and says what is allowed; rules relating two keys live in the section's ``__post_init__``.

YAML is read as DVC reads params.yaml, without anchors and duplicate keys (:func:`read_yaml`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.core.errors import ParamError


def read_yaml(text: str, source: str = "YAML"):
    """Parse ``text`` exactly as DVC reads params.yaml and dvc.yaml, refusing what DVC lets by.

    DVC parses these files with ruamel.yaml's safe loader (YAML 1.2: ``017`` is 17, ``1e-05`` a
    float, ``1:30``, ``yes`` and ``on`` words) and rewrites params.yaml with ruamel on
    ``dvc exp run -S``; reading with the same loader gives every stage the values DVC records.
    On top of it, an anchor or alias (``&x``, ``*x``: a few lines of them expand to gigabytes)
    and a duplicate key (one of the two values would be silently lost) are refused. Errors are
    one-line ParamErrors starting with ``source``.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.events import AliasEvent, NodeEvent

    yaml = YAML(typ="safe")  # as dvc.utils.serialize.parse_yaml
    try:
        for event in yaml.parse(text):  # events stream in: an alias stops before any expansion
            if isinstance(event, AliasEvent) or (
                isinstance(event, NodeEvent) and event.anchor is not None
            ):
                kind = "alias" if isinstance(event, AliasEvent) else "anchor"
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise ParamError(
                    f"{source}: line {line}: YAML {kind} {event.anchor!r} is not allowed "
                    "(write each value out; anchors and aliases can expand without bound)"
                )
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = exc.problem or exc.context or type(exc).__name__
        raise ParamError(f"{source}: {where}not valid YAML: {_one_line(problem)}") from None
    except YAMLError as exc:
        raise ParamError(f"{source}: not valid YAML: {_one_line(str(exc))}") from None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:300]


@dataclass(frozen=True)
class Spec:
    """What one key may hold: a type, optional bounds or choices, and an extra check."""

    kind: type | tuple[type, ...]
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    item: Spec | None = None  # for lists: the spec of every element
    check: Callable[[Any], str | None] | None = None  # returns an error text or None
    nonempty: bool = False

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        text = " or ".join(k.__name__ for k in kinds)
        if self.item is not None:
            text = f"a list of {self.item.describe()}"
        if self.low is not None and self.high is not None:
            text += f" in [{self.low}, {self.high}]"
        elif self.low is not None:
            text += f" >= {self.low}"
        elif self.high is not None:
            text += f" <= {self.high}"
        return text

    def validate(self, key: str, value: Any) -> None:
        """Raise ParamError naming ``key`` unless ``value`` satisfies this spec."""
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        # YAML booleans are ints in Python; never accept one where a number is meant.
        wrong_type = not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
        if wrong_type:
            hint = ""
            if isinstance(value, bool) and str in kinds:
                hint = " (YAML reads bare true/false as booleans: quote the word)"
            raise ParamError(
                f"params: {key} = {value!r} has type {type(value).__name__}; "
                f"expected {self.describe()}{hint}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ParamError(f"params: {key} = {value!r} is not a finite number")
        if self.choices is not None and value not in self.choices:
            raise ParamError(
                f"params: {key} = {value!r} is not allowed; expected {self.describe()}"
            )
        if self.low is not None and value < self.low or self.high is not None and value > self.high:
            raise ParamError(
                f"params: {key} = {value!r} is out of range; expected {self.describe()}"
            )
        if self.nonempty and len(value) == 0:
            raise ParamError(f"params: {key} must not be empty; expected {self.describe()}")
        if self.item is not None:
            for i, element in enumerate(value):
                self.item.validate(f"{key}[{i}]", element)
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise ParamError(f"params: {key} = {value!r}: {problem}")


def integer(low=None, high=None) -> Spec:
    return Spec(int, low, high)


def number(low=None, high=None) -> Spec:
    return Spec((int, float), low, high)


def text(choices=None, nonempty: bool = False) -> Spec:
    return Spec(str, choices=tuple(choices) if choices else None, nonempty=nonempty)


# numpy's legacy seeding and keras.utils.set_random_seed accept exactly this range.
SEED_MAX = 2**32 - 1


def random_seed() -> Spec:
    """A random seed: an integer every generator of the pipeline accepts."""
    return Spec(int, 0, SEED_MAX)


def boolean() -> Spec:
    return Spec(bool)


def list_of(item: Spec, nonempty: bool = True, check=None) -> Spec:
    return Spec(list, item=item, nonempty=nonempty, check=check)


def param(default, spec: Spec):
    """A section field: its default (as in params.yaml) and the rule its value must follow."""
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: _copy(value), metadata={"spec": spec})
    return dataclasses.field(default=default, metadata={"spec": spec})


def subsection(cls):
    """A field holding a nested section (e.g. ``data.embedded``)."""
    return dataclasses.field(default_factory=cls, metadata={"section": cls})


def _copy(value):
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


class Section:
    """Base of the typed sections (use with ``@dataclass(frozen=True)``).

    ``section`` is the key in params.yaml. A ``partial`` section is a view of some keys of a
    larger section (e.g. the clip format out of ``features``): other keys are left to the class
    that owns them.
    """

    section: ClassVar[str]
    partial: ClassVar[bool] = False

    @classmethod
    def from_dict(cls, values: Any, prefix: str | None = None):
        """Validate ``values`` (the section's mapping) and build the typed section."""
        prefix = prefix or cls.section
        if not isinstance(values, dict):
            raise ParamError(
                f"params: {prefix} must be a mapping of keys, got {type(values).__name__}"
            )
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names), key=str)
        if unknown and not cls.partial:
            raise ParamError(
                f"params: unknown key {prefix}.{unknown[0]}; allowed keys in {prefix}: "
                + ", ".join(sorted(names))
            )
        missing = sorted(set(names) - set(values), key=str)
        if missing:
            raise ParamError(f"params: missing key {prefix}.{missing[0]}")
        kwargs = {}
        for f in dataclasses.fields(cls):
            value = values[f.name]
            if "section" in f.metadata:
                kwargs[f.name] = f.metadata["section"].from_dict(value, f"{prefix}.{f.name}")
            else:
                f.metadata["spec"].validate(f"{prefix}.{f.name}", value)
                kwargs[f.name] = _copy(value)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The section as plain data, in field order (nested sections as mappings)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, Section) else _copy(value)
        return out

    @classmethod
    def spec_of(cls, name: str) -> Spec:
        """The rule of one key (for tools that take the same value on their command line)."""
        return next(f for f in dataclasses.fields(cls) if f.name == name).metadata["spec"]
