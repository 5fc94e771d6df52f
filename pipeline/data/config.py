"""The ``data`` and ``split`` sections: where the clips come from and how they are divided."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.errors import ParamError
from pipeline.core.labels import (
    ALL_WORDS,
    BACKGROUND_NOISE_DIR,
    SILENCE_LABEL,
    UNKNOWN_LABEL,
    label_for,
    label_problem,
)
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
# With data.synthetic the generated speakers are named ``synth-<id>`` (their clips
# ``<word>/synth-<id>_nohash_<take>.wav``): no real speaker may carry it, and the split puts every
# speaker that does in training, so validation and test measure real speakers only.
SYNTHETIC_SPEAKER_PREFIX = "synth-"
# The embedded generator's Kokoro speakers are named ``kokoro-<id>``, and the split of an embedded
# data set puts them in training only: their accented voices on the validation recordings drew
# more false alarms than real speakers do, and the operating point picked there came out stricter
# than real speech needs (docs/benchmarks.md, "Kokoro speakers").
KOKORO_SPEAKER_PREFIX = "kokoro-"
# Its Piper and hibari speakers likewise (``piper-<id>``, ``hibari-<id>``): the split keeps them in
# training, as they were measured (docs/benchmarks.md, "Piper and hibari speakers").
PIPER_SPEAKER_PREFIX = "piper-"
HIBARI_SPEAKER_PREFIX = "hibari-"
# The generated speakers that the split of an embedded data set keeps in training.
TRAINING_ONLY_PREFIXES = (KOKORO_SPEAKER_PREFIX, PIPER_SPEAKER_PREFIX, HIBARI_SPEAKER_PREFIX)
# The voice variants of espeak-ng the embedded speakers use by default (espeak-ng-data/voices/!v,
# selected as "<accent>+<variant>"). Whispering, robotic and deliberately distorted variants are
# left out. A name that does not exist would silently give the default voice: the generator
# refuses one before synthesising anything.
DEFAULT_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8",
    "f1", "f2", "f3", "f4", "f5",
    "Alex", "Andy", "Annie", "adam", "anika", "aunty", "belinda", "benjamin", "david", "ed",
    "edward", "grandma", "grandpa", "ian", "iven", "john", "Lee", "linda", "michel", "norbert",
    "paul", "quincy", "rob", "robert", "shelby", "steph", "travis", "victor",
)  # fmt: skip


def word_labels(key: str, words) -> list[str]:
    """``words`` as labels (:func:`label_for`); a ParamError naming ``key`` and the word that is
    not a usable label, repeats another (after labelling) or is a reserved name."""
    labels: list[str] = []
    for word in words:
        label = label_for(word)
        problem = label_problem(label)
        if problem:
            raise ParamError(f"params: {key}: the word {word!r} {problem}")
        if label in RESERVED_WORDS:
            raise ParamError(
                f"params: {key}: the word {word!r} collides with the reserved label {label!r}"
            )
        if label in labels:
            raise ParamError(f"params: {key}: the word {word!r} is listed twice (as {label!r})")
        labels.append(label)
    return labels


def _range_problem(bounds) -> str | None:
    if len(bounds) != 2 or bounds[0] > bounds[1]:
        return "expected [low, high] with low <= high"
    return None


def _range(low, high, kind=number) -> object:
    return list_of(kind(low, high), check=_range_problem)


@dataclass(frozen=True)
class EmbeddedConfig(Section):
    """``data.embedded``: the synthetic espeak-ng data set.

    Every variety factor defaults to what the generator did before it became a parameter (a
    range as it was, an effect off), so the default data set stays the same bytes.
    """

    section = "data.embedded"

    speakers: int = param(120, integer(1, 100000))
    takes: int = param(1, integer(1, 100))
    noise_seconds: float = param(60, number(1, 3600))
    seed: int = param(20171, random_seed())
    # Words spoken for _unknown_ besides split.wanted_words (a wanted word in it is spoken once).
    unknown_words: list = param(list(ALL_WORDS), list_of(text(nonempty=True)))
    # An espeak-ng language (a voice file of the espeak-ng data in the espeakng-loader wheel).
    language: str = param("en", text(nonempty=True))
    variants: list = param(list(DEFAULT_VARIANTS), list_of(text(nonempty=True)))
    rate: list = param([80, 175], _range(20, 450, integer))
    pitch: list = param([25, 75], _range(0, 99, integer))
    pitch_range: list = param([30, 80], _range(0, 99, integer))
    peak_level: list = param([0.1, 0.9], _range(0.001, 1))
    # Where a word sits in the room its clip leaves it: 0 at the clip's start, 1 ending at its end.
    position: list = param([0, 1], _range(0, 1))
    reverb_fraction: float = param(0, number(0, 1))
    reverb_rt60_s: list = param([0.2, 0.8], _range(0.05, 3))
    band_limit_fraction: float = param(0, number(0, 1))
    # Speakers voiced by SVOX Pico besides the espeak-ng ones (pipeline/data/acquire/pico.py;
    # languages with a Pico voice only), each a voice with a drawn vocal-tract scale, pitch and
    # rate (relative to the voice's own).
    pico_speakers: int = param(0, integer(0, 100000))
    pico_vocal_tract: list = param([0.78, 1.08], _range(0.5, 2))
    pico_pitch: list = param([0.5, 1.3], _range(0.25, 4))
    pico_rate: list = param([0.75, 1.3], _range(0.2, 5))
    # Speakers voiced by Kokoro-82M, a neural synthesizer (pipeline/data/acquire/kokoro.py), each
    # a blend of two of its voices with a drawn vocal-tract scale and speed; they say the wanted
    # words and kokoro_unknown_words of the others (Kokoro is slow).
    kokoro_speakers: int = param(0, integer(0, 100000))
    kokoro_unknown_words: int = param(5, integer(0, 100000))
    kokoro_vocal_tract: list = param([0.88, 1.12], _range(0.5, 2))
    kokoro_speed: list = param([0.9, 1.3], _range(0.25, 4))
    # Speakers voiced by Piper's en_US-joe-medium voice (pipeline/data/acquire/piper.py; English
    # only), each with a drawn vocal-tract scale and speed; they say every word.
    piper_speakers: int = param(0, integer(0, 100000))
    piper_vocal_tract: list = param([0.88, 1.12], _range(0.5, 2))
    piper_speed: list = param([0.85, 1.25], _range(0.25, 4))
    # Speakers voiced by hibari's packaged voice (pipeline/data/acquire/hibari_voice.py; English
    # only), likewise.
    hibari_speakers: int = param(0, integer(0, 100000))
    hibari_vocal_tract: list = param([0.88, 1.12], _range(0.5, 2))
    hibari_speed: list = param([0.85, 1.25], _range(0.25, 4))

    def __post_init__(self):
        labels = word_labels(f"{self.section}.unknown_words", self.unknown_words)
        object.__setattr__(self, "unknown_words", labels)
        object.__setattr__(self, "language", self.language.strip().lower())
        if len(set(self.variants)) != len(self.variants):
            raise ParamError(f"params: {self.section}.variants has duplicates: {self.variants}")


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
    # Add the embedded generator's speakers (data.embedded) to a dir, url or archive data set.
    synthetic: bool = param(False, boolean())
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

    def __post_init__(self):
        if self.synthetic and self.source == "embedded":
            raise ParamError(
                "params: data.synthetic: true adds generated speakers to recorded clips "
                "(data.source dir, url or archive); with data.source: embedded every clip is "
                "generated already: set data.synthetic: false"
            )

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
        # Words and phrases become labels ("Lights On" -> "lights_on"), the names everything
        # after this shows: folders, labels.txt, metrics.
        object.__setattr__(
            self, "wanted_words", word_labels("split.wanted_words", self.wanted_words)
        )
