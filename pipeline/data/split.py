"""Assign every clip to training / validation / testing, as the original input_data.py does.

``which_set`` hashes the speaker part of the file name, so a speaker's clips always land together
and adding files never moves existing ones; each split gets ``ceil(wanted * silence% / 100)``
silence rows and the first ``ceil(wanted * unknown% / 100)`` of its shuffled unknown-word clips,
then is shuffled, all from ``random.Random(split.seed)`` in the original's order (seed 59185
reproduces the original's lists for the same file list).

With ``data.test_set: official`` the test split is the official test set (labelled by folder,
used as-is) and the clips that the hash puts in ``testing`` are dropped rather than moved to
training, so no test-set speaker leaks into training. Training and validation are identical in
both modes.

With ``data.synthetic`` the generated speakers (``synth-<id>``) all go to training: validation
and test measure recorded speakers, the ones a user cares about. The hashed speakers keep their
splits, so adding generated speech moves no recorded clip. In the embedded data set the Kokoro
speakers (``kokoro-<id>``) go to training too (config.py says why).
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
from pathlib import Path

from pipeline.core.errors import StageError
from pipeline.core.fs import atomic_dir, atomic_write_text
from pipeline.core.labels import (
    BACKGROUND_NOISE_DIR,
    SILENCE_LABEL,
    UNKNOWN_INDEX,
    UNKNOWN_LABEL,
    label_for,
    prepare_words_list,
    write_labels,
)
from pipeline.core.metrics_files import write_metrics
from pipeline.data.clip_store import ClipStore, hash_name, is_store, speaker_of
from pipeline.data.config import SYNTHETIC_SPEAKER_PREFIX, TRAINING_ONLY_PREFIXES, SplitConfig
from pipeline.data.manifest import (
    MANIFEST_NAMES,
    SPLITS,
    Row,
    manifest_text,
    skipped_text,
)

log = logging.getLogger(__name__)

MAX_NUM_WAVS_PER_CLASS = 2**27 - 1  # ~134M, as in the original
# The original's loop order for adding silence/unknowns and shuffling: it fixes the random draws.
ORIGINAL_ORDER = ("validation", "testing", "training")


def which_set(filename, validation_percentage, testing_percentage, salt: str = "") -> str:
    """'training', 'validation' or 'testing' for a file, from a stable hash of its speaker.

    With ``salt == ""`` this is the original rule bit for bit; another salt hashes
    ``salt + speaker``, giving a different but equally stable, speaker-disjoint assignment.
    """
    hashed = hashlib.sha1((salt + hash_name(filename)).encode("utf-8")).hexdigest()
    percentage_hash = (int(hashed, 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (
        100.0 / MAX_NUM_WAVS_PER_CLASS
    )
    if percentage_hash < validation_percentage:
        return "validation"
    if percentage_hash < testing_percentage + validation_percentage:
        return "testing"
    return "training"


def _word_clips(root: Path) -> dict[str, list[str]]:
    """The clips of the store ``root`` as manifest paths (``<root>/<word>/<file>.wav``), grouped by
    their folder's label (``label_for``: lower-cased, white space as ``_``), in (folder, file)
    order; background noise left out."""
    groups: dict[str, list[str]] = {}
    with ClipStore(root) as store:
        names = sorted(store.names, key=lambda name: tuple(name.split("/", 1)))
    for name in names:
        word = label_for(name.split("/", 1)[0])
        if word != BACKGROUND_NOISE_DIR:
            groups.setdefault(word, []).append(f"{root.as_posix()}/{name}")
    return groups


def _checked_word_clips(
    root: Path, wanted_words, what: str, not_found_hint: str, missing_hint: str = ""
) -> dict[str, list[str]]:
    """``_word_clips(root)`` once the store is known to exist, hold clips and have every wanted
    word; else a StageError naming ``root`` (``what`` it is, and the hints for the fix)."""
    if not is_store(root):
        raise StageError(f"{root}: {what} not found ({not_found_hint})")
    groups = _word_clips(root)
    if not groups:
        raise StageError(f"{root}: the {what} holds no clips")
    missing = [w for w in wanted_words if w not in groups]
    if missing:
        raise StageError(
            f"{root}: the {what} has no clips of wanted word(s) {', '.join(missing)} (expected "
            f"{root}/{missing[0]}/*.wav; found words: {', '.join(sorted(groups))}){missing_hint}"
        )
    return groups


def index_dataset(
    root,
    wanted_words,
    validation_percentage,
    testing_percentage,
    salt: str = "",
    training_prefix: str | tuple[str, ...] | None = None,
):
    """Hash every clip of the store ``root`` into a split: ``(wanted, unknown)``, each split ->
    rows.

    A speaker whose id starts with ``training_prefix`` (or one of them: generated speakers of
    ``data.synthetic``, Kokoro's of the embedded set) goes to training without hashing. Raises
    StageError naming the folder if it holds no clips
    or lacks a wanted word.
    """
    root = Path(root)
    groups = _checked_word_clips(root, wanted_words, "data set", "run the download stage first")
    label_index = {word: i + 2 for i, word in enumerate(wanted_words)}
    label_index[UNKNOWN_LABEL] = UNKNOWN_INDEX
    wanted = {s: [] for s in SPLITS}
    unknown = {s: [] for s in SPLITS}
    for word, paths in groups.items():
        label = word if word in wanted_words else UNKNOWN_LABEL
        for path in paths:
            speaker = speaker_of(path)
            if training_prefix is not None and speaker.startswith(training_prefix):
                split = "training"
            else:
                split = which_set(path, validation_percentage, testing_percentage, salt)
            row = Row(path, word, label, label_index[label], speaker, split)
            (unknown if label == UNKNOWN_LABEL else wanted)[split].append(row)
    return wanted, unknown


def read_official_test(root, wanted_words) -> list[Row]:
    """The official test set, labelled by folder (other words -> _unknown_), in sorted order."""
    root = Path(root)
    groups = _checked_word_clips(
        root,
        wanted_words,
        "official test set",
        "run the download stage with data.test_set: official, or use data.test_set: hash",
        "; use data.test_set: hash for these words",
    )
    labels = prepare_words_list(wanted_words)
    label_index = {label: i for i, label in enumerate(labels)}
    rows = []
    for word, paths in groups.items():
        label = word if word in label_index else UNKNOWN_LABEL
        for path in paths:
            speaker = "" if label == SILENCE_LABEL else speaker_of(path)
            rows.append(Row(path, word, label, label_index[label], speaker, "testing"))
    return rows


def build_split(
    dataset_root,
    cfg: SplitConfig,
    official_test_root=None,
    synthetic: bool = False,
    embedded: bool = False,
) -> tuple[dict[str, list[Row]], dict]:
    """The three manifests (split -> rows in their final seeded order) and summary facts.

    Follows the original ``prepare_data_index`` step for step, so with the original seed and the
    same (sorted) file list it draws the same random numbers. ``synthetic`` (``data.synthetic``):
    every generated speaker (``SYNTHETIC_SPEAKER_PREFIX``) goes to training, so validation and
    test hold recorded speakers only; the facts count them. ``embedded`` (``data.source:
    embedded``): the generator's Kokoro and Piper speakers (``TRAINING_ONLY_PREFIXES``) go to
    training.
    """
    wanted_words, seed = cfg.wanted_words, cfg.seed
    validation_percentage, testing_percentage = cfg.validation_percentage, cfg.testing_percentage
    prefixes = (SYNTHETIC_SPEAKER_PREFIX,) * synthetic + TRAINING_ONLY_PREFIXES * embedded
    prefix = prefixes or None
    wanted, unknown = index_dataset(
        dataset_root,
        wanted_words,
        validation_percentage,
        testing_percentage,
        cfg.hash_salt,
        prefix,
    )
    if not wanted["training"]:
        raise StageError(
            f"{dataset_root}: no clips of the wanted words hash to training; add speakers or "
            "lower split.validation_percentage / split.testing_percentage"
        )
    # A split asked for but left empty (too few speakers for its share) would only fail stages
    # later (train has nothing to validate on, evaluate nothing to test): say so here.
    asked = {"validation": validation_percentage, "testing": testing_percentage}
    if official_test_root is not None:
        del asked["testing"]
    for s, percentage in asked.items():
        if percentage > 0 and not wanted[s]:
            speakers = len({row.speaker for rows in wanted.values() for row in rows})
            raise StageError(
                f"{dataset_root}: no clips of the wanted words hash to {s} ({speakers} speakers, "
                f"split.{s}_percentage={percentage}); add speakers, raise the percentage or try "
                "another split.hash_salt"
            )
    rng = random.Random(seed)
    splits = {s: list(wanted[s]) for s in SPLITS}
    for s in ORIGINAL_ORDER:
        set_size = len(wanted[s])
        silence_size = int(math.ceil(set_size * cfg.silence_percentage / 100))
        splits[s] += [Row("", SILENCE_LABEL, SILENCE_LABEL, 0, "", s)] * silence_size
        pool = list(unknown[s])
        rng.shuffle(pool)
        unknown_size = int(math.ceil(set_size * cfg.unknown_percentage / 100))
        if unknown_size > len(pool):
            log.info(
                "%s: split.unknown_percentage=%g asks for %d unknown-word clips, more than the %d "
                "there are: all of them are used",
                s,
                cfg.unknown_percentage,
                unknown_size,
                len(pool),
            )
        splits[s] += pool[:unknown_size]
    for s in ORIGINAL_ORDER:
        rng.shuffle(splits[s])

    facts = {
        "unknown_pool": {s: len(unknown[s]) for s in SPLITS},
        "test_set": "hash" if official_test_root is None else "official",
    }
    if official_test_root is not None:
        facts["dropped_hashed_testing"] = len(wanted["testing"]) + len(unknown["testing"])
        official = read_official_test(official_test_root, wanted_words)
        random.Random(seed).shuffle(official)
        splits["testing"] = official
    if synthetic:
        facts["synthetic"] = {
            "clips": sum(
                1
                for rows in (wanted["training"], unknown["training"])
                for row in rows
                if row.speaker.startswith(SYNTHETIC_SPEAKER_PREFIX)
            ),
            "in_training": sum(
                1 for row in splits["training"] if row.speaker.startswith(SYNTHETIC_SPEAKER_PREFIX)
            ),
        }
    for s in SPLITS:
        if not splits[s]:
            log.warning("the %s split is empty", s)
    return splits, facts


def split_metrics(splits, labels, facts, skipped) -> dict:
    """Clips per label per split and totals, for metrics/split.json."""
    per_split = {}
    for s in SPLITS:
        counts = {label: 0 for label in labels}
        for row in splits[s]:
            counts[row.label] += 1
        per_split[s] = {"total": len(splits[s]), "labels": counts}
    return {
        "splits": per_split,
        "total": sum(len(splits[s]) for s in SPLITS),
        "skipped_files": len(skipped),
        **facts,
    }


def write_split(out_dir, metrics_path, splits, labels, facts, skipped=()) -> dict:
    """Write the manifests, labels.txt and skipped.csv atomically, then the metrics (headline
    and details: pipeline/core/metrics_files.py)."""
    with atomic_dir(out_dir) as tmp:
        for s in SPLITS:
            atomic_write_text(tmp / MANIFEST_NAMES[s], manifest_text(splits[s]))
        write_labels(tmp / "labels.txt", labels)
        atomic_write_text(tmp / "skipped.csv", skipped_text(skipped))
    metrics = split_metrics(splits, labels, facts, skipped)
    write_metrics(metrics_path, metrics)
    return metrics
