"""The few-real-speakers bench (bench/research/few_real.py) keeps its test speakers out of
training and validation, nests its draws (the 5 speakers of a draw are among its 20) and gives the
split stage a validation set that its hash really puts in validation."""

from __future__ import annotations

from bench.research.few_real import draw_speakers, hashed_split, link_clips, speaker_clips
from tests.conftest import make_dataset, speaker_id


def test_draws_are_speaker_disjoint_nested_and_seeded():
    speakers = sorted(speaker_id(i) for i in range(300))
    folds = set()
    for draw in range(5):
        picked = draw_speakers(speakers, draw, 80)
        test = set(picked["test"])
        assert test and not test & set(picked["training"]) and not test & set(picked["validation"])
        assert all(hashed_split(s) == "training" for s in picked["training"])
        assert all(hashed_split(s) == "validation" for s in picked["validation"])
        assert picked == draw_speakers(speakers, draw, 80)
        folds.add(frozenset(test))
    assert len(folds) == 5  # each draw tests on another fifth
    # Every speaker is a test speaker exactly once over five draws.
    assert sum(len(f) for f in folds) == len(speakers) == len(frozenset().union(*folds))
    assert draw_speakers(speakers, 5, 80)["test"] == draw_speakers(speakers, 0, 80)["test"]
    assert draw_speakers(speakers, 5, 80)["training"] != draw_speakers(speakers, 0, 80)["training"]


def test_clips_are_linked_not_copied(tmp_path):
    data = make_dataset(tmp_path / "real", words=("yes", "no"), speakers=3)
    clips = speaker_clips(data)
    assert sorted(clips) == sorted(speaker_id(i) for i in range(3))
    linked = link_clips(tmp_path / "linked", clips[speaker_id(1)])
    files = sorted(p for p in linked.rglob("*") if not p.is_dir())
    assert [p.relative_to(linked).as_posix() for p in files] == [
        f"no/{speaker_id(1)}_nohash_0.wav",
        f"yes/{speaker_id(1)}_nohash_0.wav",
    ]
    assert all(p.is_symlink() and p.resolve().parent.parent == data.resolve() for p in files)
