"""The split stage: the original which_set rule, silence/unknown arithmetic, errors, determinism."""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import math
import random
import shutil

import numpy as np
import pytest
import yaml

from pipeline.core.audio import write_wav
from pipeline.core.errors import StageError
from pipeline.core.labels import SILENCE_LABEL, UNKNOWN_LABEL
from pipeline.core.metrics_files import details_path
from pipeline.data.config import SplitConfig
from pipeline.data.manifest import COLUMNS, SPLITS, read_manifest
from pipeline.data.split import build_split as _build_split
from pipeline.data.split import index_dataset, which_set
from pipeline.stages.split import main
from tests.conftest import REPO_ROOT, make_dataset, make_store, pack, speaker_id, word_clip

WANTED = ["yes", "no", "up", "down"]


def build_split(
    root,
    wanted,
    validation,
    testing,
    silence,
    unknown,
    seed=59185,
    salt="",
    official_test_root=None,
):
    """The split of ``root`` with these split params (the rest at their defaults)."""
    cfg = SplitConfig(
        wanted_words=list(wanted),
        validation_percentage=validation,
        testing_percentage=testing,
        silence_percentage=silence,
        unknown_percentage=unknown,
        seed=seed,
        hash_salt=salt,
    )
    return _build_split(root, cfg, official_test_root=official_test_root)


def reference_which_set(filename, validation, testing, salt=""):
    """Independent restatement of input_data.which_set (2**27 buckets of the sha1 integer)."""
    base = str(filename).replace("\\", "/").rsplit("/", 1)[-1]
    speaker = base.split("_nohash_", 1)[0]
    number = int.from_bytes(hashlib.sha1((salt + speaker).encode()).digest(), "big")
    percent = (number % 2**27) * (100.0 / (2**27 - 1))
    if percent < validation:
        return "validation"
    return "testing" if percent < validation + testing else "training"


def names(count, seed=0):
    rng = random.Random(seed)
    out = []
    for i in range(count):
        speaker = f"{rng.getrandbits(32):08x}"
        form = i % 4
        if form == 0:
            out.append(f"{speaker}_nohash_{rng.randrange(5)}.wav")
        elif form == 1:
            out.append(f"data/raw/dataset/yes/{speaker}_nohash_0.wav")
        elif form == 2:
            out.append(f"{speaker}_nohash_1_nohash_2.wav")
        else:
            out.append(f"noise_{speaker}.wav")  # no _nohash_: the whole name is hashed
    return out


@pytest.mark.parametrize("validation,testing", [(10, 10), (0, 0), (25, 5), (33.3, 40), (0, 100)])
def test_which_set_matches_reference(validation, testing):
    for name in names(3000):
        assert which_set(name, validation, testing) == reference_which_set(
            name, validation, testing
        )
        assert which_set(name, validation, testing, "x") == reference_which_set(
            name, validation, testing, "x"
        )


def test_which_set_known_values():
    # Fixed points of the original rule, so a change to the shared reference is caught too.
    got = [which_set(f"{speaker_id(i)}_nohash_0.wav", 10, 10) for i in range(40)]
    assert collections.Counter(got) == collections.Counter(
        reference_which_set(f"{speaker_id(i)}_nohash_0.wav", 10, 10) for i in range(40)
    )
    assert set(got) == set(SPLITS)


def test_which_set_properties():
    all_names = names(20000, seed=1)
    counts = collections.Counter(which_set(n, 10, 10) for n in all_names)
    assert abs(counts["validation"] / 20000 - 0.10) < 0.01
    assert abs(counts["testing"] / 20000 - 0.10) < 0.01
    speaker = "0a2b400e"
    # One speaker's takes and words land together; the folder does not matter.
    sets = {which_set(f"{w}/{speaker}_nohash_{k}.wav", 10, 10) for w in WANTED for k in range(5)}
    assert len(sets) == 1
    # A salt gives another assignment (many names move) that still keeps speakers together.
    moved = sum(which_set(n, 10, 10) != which_set(n, 10, 10, "x") for n in all_names)
    assert moved > 2000
    sets = {
        which_set(f"{w}/{speaker}_nohash_{k}.wav", 10, 10, "x") for w in WANTED for k in range(5)
    }
    assert len(sets) == 1


def test_adding_files_never_moves_existing_ones(tmp_path):
    root = make_store(tmp_path / "d", words=("yes", "no", "cat"), speakers=20)
    before = index_dataset(root, ["yes", "no"], 10, 10)
    make_dataset(tmp_path / "more", words=("yes", "no", "cat", "bird"), speakers=40, takes=2)
    for path in (tmp_path / "more").glob("*/*.wav"):
        target = root / path.parent.name / path.name
        if not target.exists():
            target.parent.mkdir(exist_ok=True)
            shutil.copy(path, target)
    after = index_dataset(pack(root), ["yes", "no"], 10, 10)

    def assignment(index):
        wanted, unknown = index
        return {r.path: r.split for group in (wanted, unknown) for s in SPLITS for r in group[s]}

    old, new = assignment(before), assignment(after)
    assert len(new) > len(old)
    assert all(new[path] == split for path, split in old.items())


@pytest.fixture
def medium_dataset(tmp_path):
    return make_store(
        tmp_path / "dataset", words=("yes", "no", "up", "down", "cat", "dog", "bird"), speakers=30
    )


@pytest.mark.parametrize("silence,unknown", [(10, 10), (25, 30), (0, 0), (150, 400)])
def test_silence_and_unknown_arithmetic(medium_dataset, silence, unknown):
    splits, facts = build_split(medium_dataset, WANTED, 20, 20, silence, unknown)
    files = sorted(medium_dataset.glob("*/*.wav"))
    files = [f for f in files if f.parent.name != "_background_noise_"]
    for s in SPLITS:
        rows = splits[s]
        in_split = [f for f in files if reference_which_set(f.name, 20, 20) == s]
        wanted = [f for f in in_split if f.parent.name in WANTED]
        pool = {f.as_posix() for f in in_split if f.parent.name not in WANTED}
        labels = collections.Counter(r.label for r in rows)
        assert sum(labels[w] for w in WANTED) == len(wanted)
        assert labels[SILENCE_LABEL] == math.ceil(len(wanted) * silence / 100)
        assert labels[UNKNOWN_LABEL] == min(len(pool), math.ceil(len(wanted) * unknown / 100))
        assert facts["unknown_pool"][s] == len(pool)
        unknown_paths = [r.path for r in rows if r.label == UNKNOWN_LABEL]
        assert len(set(unknown_paths)) == len(unknown_paths) and set(unknown_paths) <= pool
        for r in rows:
            assert r.split == s
            if r.label == SILENCE_LABEL:
                assert (r.path, r.word, r.label_index, r.speaker) == ("", SILENCE_LABEL, 0, "")
            else:
                assert r.label_index == (
                    1 if r.label == UNKNOWN_LABEL else 2 + WANTED.index(r.label)
                )
                assert r.speaker == r.path.rsplit("/", 1)[1].split("_nohash_")[0]
    speakers = [{r.speaker for r in splits[s] if r.speaker} for s in SPLITS]
    assert not (speakers[0] & speakers[1] or speakers[0] & speakers[2] or speakers[1] & speakers[2])


def test_asking_for_more_unknown_words_than_there_are_says_all_are_used(medium_dataset, caplog):
    with caplog.at_level(logging.INFO, logger="pipeline.data.split"):
        build_split(medium_dataset, WANTED, 20, 20, 10, 10)
    assert "unknown-word clips" not in caplog.text
    with caplog.at_level(logging.INFO, logger="pipeline.data.split"):
        _, facts = build_split(medium_dataset, WANTED, 20, 20, 10, 400)
    assert (
        f"more than the {facts['unknown_pool']['training']} there are: all of them are used"
        in caplog.text
    )
    assert "training: split.unknown_percentage=400" in caplog.text


def original_prepare_data_index(root, wanted, validation, testing, silence, unknown, seed):
    """The original algorithm restated (over the sorted file list) to check the draw order."""
    rand = random.Random(seed)
    data = {"validation": [], "testing": [], "training": []}
    unknowns = {"validation": [], "testing": [], "training": []}
    for path in sorted(root.glob("*/*.wav"), key=lambda p: (p.parent.name, p.name)):
        word = path.parent.name.lower()
        if word == "_background_noise_":
            continue
        s = reference_which_set(path.name, validation, testing)
        label = word if word in wanted else "_unknown_"
        (data if word in wanted else unknowns)[s].append((label, path.as_posix()))
    for s in ["validation", "testing", "training"]:
        size = len(data[s])
        data[s].extend([("_silence_", "")] * int(math.ceil(size * silence / 100)))
        rand.shuffle(unknowns[s])
        data[s].extend(unknowns[s][: int(math.ceil(size * unknown / 100))])
    for s in ["validation", "testing", "training"]:
        rand.shuffle(data[s])
    return data


def test_order_follows_the_original_draws(medium_dataset):
    splits, _ = build_split(medium_dataset, WANTED, 20, 20, 25, 30, seed=59185)
    expected = original_prepare_data_index(medium_dataset, WANTED, 20, 20, 25, 30, 59185)
    for s in SPLITS:
        assert [(r.label, r.path) for r in splits[s]] == expected[s]


def test_seed_changes_order_not_content(medium_dataset):
    a, _ = build_split(medium_dataset, WANTED, 20, 20, 10, 10, seed=1)
    b, _ = build_split(medium_dataset, WANTED, 20, 20, 10, 10, seed=2)
    assert [r.path for r in a["training"]] != [r.path for r in b["training"]]
    wanted_a = sorted(r.path for r in a["training"] if r.label in WANTED)
    assert wanted_a == sorted(r.path for r in b["training"] if r.label in WANTED)


def test_errors_name_the_folder(tmp_path, tiny_dataset):
    empty = tmp_path / "empty"
    (empty / "yes").mkdir(parents=True)
    with pytest.raises(StageError, match=f"{empty}: the data set holds no clips"):
        build_split(pack(empty), WANTED, 10, 10, 10, 10)
    with pytest.raises(StageError, match="absent: data set not found.*download"):
        build_split(tmp_path / "absent", WANTED, 10, 10, 10, 10)
    with pytest.raises(StageError, match="loose: data set not found"):  # WAVs, but no clip store
        build_split(
            make_dataset(tmp_path / "loose", words=("yes",), speakers=1), WANTED, 10, 10, 10, 10
        )
    pack(tiny_dataset)
    with pytest.raises(StageError, match=r"wanted word\(s\) left.*left/\*\.wav"):
        build_split(tiny_dataset, WANTED + ["left"], 10, 10, 10, 10)
    (tiny_dataset / "right").mkdir()  # present but empty
    with pytest.raises(StageError, match=r"wanted word\(s\) right"):
        build_split(pack(tiny_dataset), WANTED + ["right"], 10, 10, 10, 10)
    with pytest.raises(StageError, match="hash to training"):
        build_split(tiny_dataset, WANTED, 50, 50, 10, 10)


def test_a_requested_split_left_empty_is_an_error_naming_it(tmp_path):
    """Too few speakers for a split's share fails here, not stages later in evaluate."""
    few = make_store(tmp_path / "few", words=("yes", "no", "cat"), speakers=8)
    sets = {which_set(p.name, 10, 10) for p in (few / "yes").glob("*.wav")}
    assert "testing" not in sets  # these eight speakers all hash elsewhere
    with pytest.raises(
        StageError, match=r"hash to testing \(8 speakers, split.testing_percentage=10\)"
    ):
        build_split(few, ["yes", "no"], 10, 10, 10, 10)
    # Asking for no test split at all is allowed.
    splits, _ = build_split(few, ["yes", "no"], 10, 0, 10, 10)
    assert not [r for r in splits["testing"] if r.path]


def make_official(root, wanted=WANTED, speakers=range(100, 106)):
    """An official-test-like folder: command folders, _unknown_/ and _silence_/."""
    for word in wanted:
        for s in speakers:
            write_wav(root / word / f"{speaker_id(s)}_nohash_0.wav", word_clip(word, s, 0), 16000)
    for s in speakers[:3]:
        name = f"cat_{speaker_id(s)}_nohash_0.wav"
        write_wav(root / "_unknown_" / name, word_clip("cat", s, 0), 16000)
    for i in range(2):
        write_wav(root / "_silence_" / f"noise_{i}.wav", np.zeros(16000, np.float32), 16000)
    return pack(root)


def test_official_test_set(tmp_path, medium_dataset):
    official = make_official(tmp_path / "official_test")
    hashed, _ = build_split(medium_dataset, WANTED, 20, 20, 10, 10)
    splits, facts = build_split(medium_dataset, WANTED, 20, 20, 10, 10, official_test_root=official)
    assert splits["training"] == hashed["training"]
    assert splits["validation"] == hashed["validation"]
    test = splits["testing"]
    expected = sorted(p.as_posix() for p in official.glob("*/*.wav"))
    assert sorted(r.path for r in test) == expected
    for r in test:
        folder = r.path.split("/")[-2]
        assert r.label == {"_unknown_": UNKNOWN_LABEL, "_silence_": SILENCE_LABEL}.get(
            folder, folder
        )
        assert r.split == "testing"
    dataset_paths = {r.path for s in SPLITS for r in splits[s]} & {
        p.as_posix() for p in medium_dataset.glob("*/*.wav")
    }
    assert not any(which_set(p, 20, 20) == "testing" for p in dataset_paths)
    assert facts["test_set"] == "official"
    assert facts["dropped_hashed_testing"] == sum(
        which_set(p, 20, 20) == "testing"
        for p in medium_dataset.glob("*/*.wav")
        if p.parent.name != "_background_noise_"
    )
    with pytest.raises(StageError, match="official test set has no clips of wanted word"):
        build_split(medium_dataset, WANTED + ["cat"], 20, 20, 10, 10, official_test_root=official)
    with pytest.raises(StageError, match="official test set not found"):
        build_split(medium_dataset, WANTED, 20, 20, 10, 10, official_test_root=tmp_path / "none")


def write_params(path, **split):
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["split"].update(split)
    params["split"]["wanted_words"] = split.get("wanted_words", WANTED)
    path.write_text(yaml.safe_dump(params))
    return path


def run_stage(tmp_path, raw, tag, **split):
    params = write_params(tmp_path / f"params_{tag}.yaml", **split)
    out, metrics = tmp_path / f"split_{tag}", tmp_path / f"split_{tag}.json"
    argv = [
        "--params",
        str(params),
        "--raw",
        str(raw),
        "--out",
        str(out),
        "--metrics",
        str(metrics),
    ]
    assert main(argv) == 0
    return out, metrics


def test_stage_outputs_are_complete_and_byte_identical(tmp_path):
    raw = tmp_path / "raw"
    make_store(raw / "dataset", words=("yes", "no", "up", "down", "cat"), speakers=20)
    (raw / "skipped.csv").write_text(
        "path,problem\nyes/bad_nohash_0.wav,2 channels; expected mono\n"
    )
    out_a, metrics_a = run_stage(
        tmp_path, raw, "a", validation_percentage=20, testing_percentage=20
    )
    out_b, metrics_b = run_stage(
        tmp_path, raw, "b", validation_percentage=20, testing_percentage=20
    )
    names = ["train.csv", "validation.csv", "test.csv", "labels.txt", "skipped.csv"]
    assert sorted(p.name for p in out_a.iterdir()) == sorted(names)
    for name in names:
        assert (out_a / name).read_bytes() == (out_b / name).read_bytes()
    assert metrics_a.read_bytes() == metrics_b.read_bytes()
    labels = (out_a / "labels.txt").read_text().split()
    assert labels == [SILENCE_LABEL, UNKNOWN_LABEL, *WANTED]
    metrics = json.loads(details_path(metrics_a).read_text())
    total = 0
    for s, name in zip(SPLITS, ["train.csv", "validation.csv", "test.csv"]):
        header = (out_a / name).read_text().splitlines()[0]
        assert header == ",".join(COLUMNS)
        rows = read_manifest(out_a / name)
        assert {r.split for r in rows} <= {s}
        assert metrics["splits"][s]["total"] == len(rows)
        assert metrics["splits"][s]["labels"] == {
            label: sum(r.label == label for r in rows) for label in labels
        }
        total += len(rows)
    assert metrics["total"] == total and metrics["skipped_files"] == 1
    assert "2 channels" in (out_a / "skipped.csv").read_text()
    # Another seed gives other files (same rows, other order).
    out_c, _ = run_stage(
        tmp_path, raw, "c", validation_percentage=20, testing_percentage=20, seed=7
    )
    assert (out_c / "train.csv").read_bytes() != (out_a / "train.csv").read_bytes()


def test_stage_failure_writes_nothing(tmp_path):
    raw = tmp_path / "raw"
    make_store(raw / "dataset", words=("yes", "no"), speakers=11)
    params = write_params(tmp_path / "params.yaml")
    out, metrics = tmp_path / "split", tmp_path / "split.json"
    argv = [
        "--params",
        str(params),
        "--raw",
        str(raw),
        "--out",
        str(out),
        "--metrics",
        str(metrics),
    ]
    with pytest.raises(StageError, match="wanted word"):
        main(argv)
    assert not out.exists() and not metrics.exists()
    # No skip report from download: an empty one (header only) is written.
    make_store(raw / "dataset", words=("up", "down"), speakers=11)
    assert main(argv) == 0
    assert (out / "skipped.csv").read_text() == "path,problem\n"


def test_read_manifest_names_file_and_line_of_a_bad_row(tmp_path):
    """The one manifest reader (featurize, freeze, synthesize_stream use it) rejects bad rows."""
    header = ",".join(COLUMNS) + "\n"
    good = "a/x_nohash_0.wav,yes,yes,2,x,testing\n,_silence_,_silence_,0,,testing\n"
    path = tmp_path / "test.csv"
    with pytest.raises(FileNotFoundError, match="test.csv: not found.*split stage"):
        read_manifest(path)
    path.write_text(header + good)
    rows = read_manifest(path)
    assert [(r.path, r.label, r.label_index) for r in rows] == [
        ("a/x_nohash_0.wav", "yes", 2),
        ("", SILENCE_LABEL, 0),
    ]
    path.write_text(header + good + "b/y_nohash_0.wav,no,no,three,y,testing\n")
    with pytest.raises(StageError, match=r"test.csv:4: label_index 'three' is not an integer"):
        read_manifest(path)
    path.write_text(header + ",no,no,3,y,testing\n")
    with pytest.raises(StageError, match=r"test.csv:2: row of label 'no' has no path"):
        read_manifest(path)
    path.write_text("path,label\n" + "a.wav,yes\n")
    with pytest.raises(StageError, match="expected columns path,word"):
        read_manifest(path)


def test_real_clips(shared_mini, tmp_path):
    files = [p for p in shared_mini.glob("*/*.wav") if p.parent.name != "_background_noise_"]
    assert len(files) == 2804
    # Its README: the original rule puts 2,545 in testing; salt "x" gives 2,095 / 458 / 251.
    original = collections.Counter(which_set(p, 10, 10) for p in files)
    assert original == {"testing": 2545, "training": 219, "validation": 40}
    salted = collections.Counter(which_set(p, 10, 10, "x") for p in files)
    assert salted == {"training": 2095, "validation": 458, "testing": 251}

    wanted = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
    splits, facts = build_split(
        pack(shared_mini, tmp_path / "mini"), wanted, 10, 10, 10, 10, salt="x"
    )
    for s in SPLITS:
        n_wanted = sum(r.label in wanted for r in splits[s])
        counts = collections.Counter(r.label for r in splits[s])
        assert counts[SILENCE_LABEL] == math.ceil(n_wanted / 10)
        assert counts[UNKNOWN_LABEL] == min(math.ceil(n_wanted / 10), facts["unknown_pool"][s])
    assert sum(len(splits[s]) for s in SPLITS) == 2096 + 468 + 255
    assert sum(facts["unknown_pool"].values()) == sum(p.parent.name not in wanted for p in files)


def test_a_phrase_folder_is_labelled_as_the_wanted_phrase(tmp_path):
    # A folder "Lights On" (a dir source) and the wanted phrase "lights on" meet as lights_on,
    # the label labels.txt and the manifests show.
    raw = tmp_path / "raw"
    make_store(raw / "dataset", words=("Lights On", "cat"), speakers=20)
    out, _ = run_stage(
        tmp_path,
        raw,
        "phrase",
        wanted_words=["lights on"],
        validation_percentage=20,
        testing_percentage=20,
    )
    assert (out / "labels.txt").read_text().split() == [SILENCE_LABEL, UNKNOWN_LABEL, "lights_on"]
    rows = read_manifest(out / "train.csv")
    assert {r.label for r in rows} >= {"lights_on", UNKNOWN_LABEL}
    assert {r.word for r in rows if r.label == "lights_on"} == {"lights_on"}


@pytest.mark.parametrize("prefix", ["kokoro-", "piper-"])
def test_neural_speakers_of_the_embedded_set_train_only_and_move_no_other_clip(tmp_path, prefix):
    root = make_dataset(tmp_path / "data", words=("yes", "no", "cat"), speakers=12)
    for word in ("yes", "no", "cat"):
        for s in range(12):
            write_wav(
                root / word / f"{prefix}{speaker_id(s)}_nohash_0.wav", word_clip(word, s, 0), 16000
            )
    pack(root)
    cfg = SplitConfig(wanted_words=["yes", "no"], validation_percentage=30, testing_percentage=30)
    embedded, _ = _build_split(root, cfg, embedded=True)
    recorded, _ = _build_split(root, cfg)  # a folder of recordings: every speaker hashed

    def generated_sets(splits):
        return {s for s, rows in splits.items() for r in rows if r.speaker.startswith(prefix)}

    assert generated_sets(embedded) == {"training"}
    assert generated_sets(recorded) == {"training", "validation", "testing"}

    def others(rows):  # the other speakers' words (the unknown-word draw has another pool)
        return {r.path for r in rows if r.label in ("yes", "no") and prefix not in r.speaker}

    for s in SPLITS:  # keep their sets
        assert others(embedded[s]) == others(recorded[s]) and others(embedded[s])
