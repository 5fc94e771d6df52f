"""The ``data`` and ``split`` sections: where the clips come from and how they are divided."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.errors import ParamError
from pipeline.core.labels import BACKGROUND_NOISE_DIR, SILENCE_LABEL, UNKNOWN_LABEL
from pipeline.core.schema import (
    Section,
    boolean,
    integer,
    list_of,
    number,
    param,
    random_seed,
    subsection,
    text,
)

SOURCES = ("embedded", "url", "archive", "dir")
TEST_SETS = ("hash", "official")
ON_BAD_FILE = ("error", "skip")
ON_LONG_CLIP = ("truncate", "skip", "error")
RESERVED_WORDS = (SILENCE_LABEL, UNKNOWN_LABEL, BACKGROUND_NOISE_DIR)


@dataclass(frozen=True)
class EmbeddedConfig(Section):
    """``data.embedded``: the synthetic espeak-ng data set."""

    section = "data.embedded"

    speakers: int = param(120, integer(1, 100000))
    takes: int = param(1, integer(1, 100))
    noise_seconds: float = param(60, number(1, 3600))
    seed: int = param(20171, random_seed())


@dataclass(frozen=True)
class DataConfig(Section):
    section = "data"

    source: str = param("embedded", text(SOURCES))
    url: str = param(
        "https://storage.googleapis.com/download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
        text(),
    )
    sha256: str = param("", text())
    archive: str = param("", text())
    dir: str = param("", text())
    test_set: str = param("hash", text(TEST_SETS))
    test_set_source: str = param(
        "https://storage.googleapis.com/download.tensorflow.org/data/"
        "speech_commands_test_set_v0.02.tar.gz",
        text(),
    )
    test_set_sha256: str = param("", text())
    on_bad_file: str = param("error", text(ON_BAD_FILE))
    resample: bool = param(False, boolean())
    on_long_clip: str = param("truncate", text(ON_LONG_CLIP))
    max_clip_multiple: float = param(10, number(1, 100000))
    max_member_mb: int = param(256, integer(1))
    max_total_mb: int = param(16384, integer(1))
    max_members: int = param(1_000_000, integer(1))
    keep_download: bool = param(False, boolean())
    embedded: EmbeddedConfig = subsection(EmbeddedConfig)

    @property
    def location(self) -> str:
        """The url, archive or folder that ``source`` names (empty for embedded)."""
        return {"url": self.url, "archive": self.archive, "dir": self.dir}.get(self.source, "")


@dataclass(frozen=True)
class SplitConfig(Section):
    section = "split"

    wanted_words: list = param(
        ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"],
        list_of(text(nonempty=True)),
    )
    validation_percentage: float = param(10, number(0, 100))
    testing_percentage: float = param(10, number(0, 100))
    silence_percentage: float = param(10, number(0, 1000))
    unknown_percentage: float = param(10, number(0, 1000))
    hash_salt: str = param("", text())
    seed: int = param(59185, random_seed())

    def __post_init__(self):
        if self.validation_percentage + self.testing_percentage > 100:
            raise ParamError(
                "params: split.validation_percentage + split.testing_percentage must be <= 100"
            )
        words = self.wanted_words
        if len(set(words)) != len(words):
            raise ParamError(f"params: split.wanted_words has duplicates: {words}")
        reserved = set(RESERVED_WORDS) & set(words)
        if reserved:
            raise ParamError(f"params: split.wanted_words may not contain {sorted(reserved)}")
