"""The operating point an export carries: the decoder settings it was built with.

freeze writes ``decoder.json`` into the export (``decoder_dict`` of the params' ``stream_eval``
section: the clip stride, the averaging window, the threshold, the suppression, the minimum count
and margin), and every tool that decodes (``kws stream-eval``, ``detect``, ``listen``) starts from
it, its flags overriding each setting (``decoder_settings``). The file is read as untrusted input:
a missing, unknown or out-of-range key is one error naming the file. A model without one (a
.keras, the original frozen graph, an older export) gets the section's defaults, the original's.
``time_tolerance_ms`` is how detections are matched to a ground truth, not how they are found: it
stays out of the file.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from pipeline.core.errors import ParamError, StageError
from pipeline.core.paths import DECODER_NAME
from pipeline.inference.export_files import read_mapping
from pipeline.streaming.config import StreamEvalConfig

# The settings of the decoder (RecognizeCommands and its clip stride), in the section's order.
DECODER_KEYS = tuple(
    f.name for f in dataclasses.fields(StreamEvalConfig) if f.name != "time_tolerance_ms"
)
# Keys added after exports were first made: an older decoder.json without one gets the default.
LATER_KEYS = ("repeat_commands",)


def decoder_dict(settings: StreamEvalConfig) -> dict:
    """What decoder.json holds for ``settings``."""
    return {key: getattr(settings, key) for key in DECODER_KEYS}


def decoder_file(model) -> Path | None:
    """The decoder.json that goes with the model at ``model``: in the export folder it names,
    or beside the model file (an export's .tflite); the export folder above its saved_model/.
    None when there is none."""
    model = Path(model)
    folders = [model] if model.is_dir() else []
    folders += [model.parent]
    for folder in folders:
        if (folder / DECODER_NAME).is_file():
            return folder / DECODER_NAME
    return None


def read_decoder(path) -> dict:
    """decoder.json checked: every decoder key there, none other, each within its rule."""
    data = read_mapping(path)
    for key in DECODER_KEYS:
        if key not in data and key not in LATER_KEYS:
            raise StageError(f"{path}: missing key {key}")
    unknown = sorted(set(data) - set(DECODER_KEYS), key=str)
    if unknown:
        raise StageError(
            f"{path}: unknown key {unknown[0]}; the keys of a decoder.json: "
            + ", ".join(DECODER_KEYS)
        )
    try:
        StreamEvalConfig.from_dict({**StreamEvalConfig().to_dict(), **data}, "decoder")
    except ParamError as exc:
        raise StageError(f"{path}: {str(exc).removeprefix('params: decoder.')}") from None
    return data


def decoder_settings(model, overrides: dict | None = None) -> tuple[StreamEvalConfig, str]:
    """The decoder settings for ``model``: its export's decoder.json (else the defaults), each
    key of ``overrides`` that is not None instead (a tool's flags); checked as params are.
    Returns them and where they came from, in words."""
    path = decoder_file(model) if model is not None else None
    values = StreamEvalConfig().to_dict()
    source = "defaults"
    if path is not None:
        values.update(read_decoder(path))
        source = str(path)
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    if given:
        source += " and flags " + ", ".join(
            ("--no-" if value is False else "--") + key.replace("_", "-")
            for key, value in given.items()
        )
    values.update(given)
    return StreamEvalConfig.from_dict(values, "stream_eval"), source


def describe(settings: StreamEvalConfig, source: str) -> str:
    """One line: the decoder settings and where they came from."""
    margin = f", margin {settings.minimum_margin:g}" if settings.minimum_margin else ""
    repeats = ", repeated words reported" if settings.repeat_commands else ""
    return (
        f"decoder: stride {settings.clip_stride_ms} ms, average {settings.average_window_ms} ms, "
        f"threshold {settings.detection_threshold:g}, suppression {settings.suppression_ms} ms, "
        f"minimum count {settings.minimum_count}{margin}{repeats} ({source})"
    )


def add_decoder_flags(parser, *, tolerance: bool = False) -> None:
    """The decoder's flags (``--clip-stride-ms`` ...), each defaulting to the export's
    decoder.json (else the original's value); ``tolerance`` adds ``--time-tolerance-ms``."""
    defaults = StreamEvalConfig()
    for key in (*DECODER_KEYS, *(("time_tolerance_ms",) if tolerance else ())):
        default = getattr(defaults, key)
        kind = (
            {"action": argparse.BooleanOptionalAction}  # --repeat-commands / --no-repeat-commands
            if isinstance(default, bool)
            else {"type": type(default)}
        )
        parser.add_argument(
            "--" + key.replace("_", "-"),
            **kind,
            default=None,
            help=f"default: the export's {DECODER_NAME}, else {default} (the original's)"
            if key in DECODER_KEYS
            else f"default {default}",
        )


def flag_overrides(args) -> dict:
    """The decoder flags given on a command line parsed with ``add_decoder_flags``."""
    return {
        key: getattr(args, key)
        for key in (*DECODER_KEYS, "time_tolerance_ms")
        if getattr(args, key, None) is not None
    }
