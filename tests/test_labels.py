"""Label files: the order the models use, and a clear error for an empty file."""

from __future__ import annotations

import pytest

from pipeline.core.errors import StageError
from pipeline.core.labels import prepare_words_list, read_labels, write_labels


def test_labels_round_trip_in_model_order(tmp_path):
    labels = prepare_words_list(["yes", "no"])
    assert labels == ["_silence_", "_unknown_", "yes", "no"]
    write_labels(tmp_path / "labels.txt", labels)
    (tmp_path / "padded.txt").write_text("\n_silence_\n _unknown_ \nyes\n\nno\n")
    assert read_labels(tmp_path / "labels.txt") == labels
    assert read_labels(tmp_path / "padded.txt") == labels


def test_empty_labels_file_is_a_stage_error_naming_it(tmp_path):
    empty = tmp_path / "labels.txt"
    empty.write_text("\n \n")
    with pytest.raises(StageError, match=f"{empty}: labels file is empty"):
        read_labels(empty)
