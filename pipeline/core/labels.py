"""Label names and order, as in the original input_data.py."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from pipeline.core.errors import StageError
from pipeline.core.fs import atomic_write_text

SILENCE_LABEL = "_silence_"
UNKNOWN_LABEL = "_unknown_"
BACKGROUND_NOISE_DIR = "_background_noise_"
SILENCE_INDEX = 0
UNKNOWN_INDEX = 1

# The 35 words of Speech Commands v0.02 (v0.01 has the first 30).
ALL_WORDS = [
    "yes",
    "no",
    "up",
    "down",
    "left",
    "right",
    "on",
    "off",
    "stop",
    "go",
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "bed",
    "bird",
    "cat",
    "dog",
    "happy",
    "house",
    "marvin",
    "sheila",
    "tree",
    "wow",
    "backward",
    "forward",
    "follow",
    "learn",
    "visual",
]


def label_for(word: str) -> str:
    """The label of a word, phrase or word folder: lower-cased, runs of white space as ``_``.

    One rule for every place a word appears: ``split.wanted_words``, the embedded generator's
    folders (``"lights on"`` is spoken as two words and stored in ``lights_on/``), the split's
    reading of folder names, labels.txt and the metrics.
    """
    return re.sub(r"\s+", "_", word.strip()).lower()


def spoken_text(label: str) -> str:
    """What a synthesiser says for ``label``: its ``_`` back to spaces."""
    return label.replace("_", " ")


def label_problem(label: str) -> str | None:
    """Why ``label`` (see :func:`label_for`) cannot name a word folder, or None when it can.

    Letters and marks of any script, digits, ``_``, ``'`` and ``-`` are allowed; at least one
    letter or digit is needed.
    """
    if not label:
        return "is empty"
    for char in label:
        if char not in "_'-" and unicodedata.category(char)[0] not in "LMN":
            return f"holds {char!r}: a word may have letters, digits, spaces, ' and -"
    if not any(unicodedata.category(char)[0] in "LN" for char in label):
        return "has no letter or digit"
    return None


def prepare_words_list(wanted_words) -> list[str]:
    """Labels in model-output order: silence, unknown, then the wanted words."""
    return [SILENCE_LABEL, UNKNOWN_LABEL, *wanted_words]


def write_labels(path, labels) -> None:
    atomic_write_text(path, "".join(f"{label}\n" for label in labels))


def read_labels(path) -> list[str]:
    """One label a line (blank lines ignored); a StageError naming the file if it is not text."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StageError(f"{path}: cannot read the labels file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise StageError(
            f"{path}: not a text file of labels (not UTF-8 at byte {exc.start})"
        ) from None
    lines = [line.strip() for line in text.splitlines()]
    labels = [line for line in lines if line]
    if not labels:
        raise StageError(f"{path}: labels file is empty")
    for n, label in enumerate(labels, start=1):
        if any(ord(c) < 32 or ord(c) == 127 for c in label):
            raise StageError(
                f"{path}: not a text file of labels (label {n}, {label[:40]!r}, holds control "
                "characters)"
            )
    return labels
