"""The clip store (download's packed clips) and the chunked .npy writer behind it and the
features."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from pipeline.core.audio import read_wav
from pipeline.core.errors import StageError
from pipeline.core.npy import NpyWriter
from pipeline.data.clip_store import ClipReader, ClipStore, pack_folder
from tests.conftest import make_dataset, pack, speaker_id, store_pcm, wav_pcm


@pytest.fixture
def store(tmp_path):
    return pack(
        make_dataset(tmp_path / "loose", words=("yes", "no"), speakers=3), tmp_path / "store"
    )


def test_pack_keeps_every_clip_by_name_and_reads_like_the_wav(tmp_path, store):
    loose = tmp_path / "loose"
    assert store_pcm(store) == wav_pcm(loose)
    with ClipStore(store) as opened:
        assert opened.names == sorted(opened.names) and len(opened) == 3 * 2 + 2
        name = f"yes/{speaker_id(1)}_nohash_0.wav"
        np.testing.assert_array_equal(
            opened.read(name), read_wav(loose / name, 16000)
        )  # float32, same values
        entry = opened.entry(name)
        assert (entry.word, entry.speaker, entry.length) == ("yes", speaker_id(1), 16000)
        noise = opened.of_word("_background_noise_")
        assert [e.name for e in noise] == [
            "_background_noise_/brown_noise.wav",
            "_background_noise_/white_noise.wav",
        ]
        assert all(e.speaker == "" for e in noise)
        assert opened.sample_rate == 16000
        assert opened.wav_bytes(name)[44:] == (loose / name).read_bytes()[44:]


def test_packing_is_byte_identical_and_consume_deletes_the_wavs(tmp_path, store):
    again = pack(tmp_path / "loose", tmp_path / "again")
    for name in ("audio.npy", "index.csv", "store.json"):
        assert (store / name).read_bytes() == (again / name).read_bytes(), name
    loose = make_dataset(tmp_path / "to_consume", words=("yes", "no"), speakers=3)
    (loose / "LICENSE").write_text("licence")
    meta = pack_folder(loose, tmp_path / "consumed", 16000, consume=True, progress=False)
    assert (
        not list(loose.rglob("*.wav"))
        and (tmp_path / "consumed" / "LICENSE").read_text() == "licence"
    )
    assert (tmp_path / "consumed" / "audio.npy").read_bytes() == (store / "audio.npy").read_bytes()
    assert (
        meta["audio_sha256"] == hashlib.sha256((store / "audio.npy").read_bytes()[128:]).hexdigest()
    )


def test_damaged_stores_are_named(tmp_path, store):
    with pytest.raises(FileNotFoundError, match="nowhere: not a clip store"):
        ClipStore(tmp_path / "nowhere")
    index = (store / "index.csv").read_text()
    (store / "index.csv").write_text(index.replace("offset", "start"))
    with pytest.raises(
        StageError, match="index.csv: expected columns name,word,speaker,offset,length"
    ):
        ClipStore(store)
    lines = index.splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",99999999"
    (store / "index.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(StageError, match=r"index.csv:3: clip .* lies outside audio.npy"):
        ClipStore(store)
    (store / "index.csv").write_text(index)
    (store / "audio.npy").write_bytes((store / "audio.npy").read_bytes()[:-1000])
    with pytest.raises(StageError, match="audio.npy: not a .npy array"):
        ClipStore(store)
    np.save(store / "audio.npy", np.zeros(10, np.float32))
    with pytest.raises(StageError, match="audio.npy: expected int16 samples"):
        ClipStore(store)


def test_reader_resolves_manifest_paths_and_names_what_is_missing(tmp_path, store):
    with ClipReader(tmp_path) as reader:
        name = f"no/{speaker_id(2)}_nohash_0.wav"
        np.testing.assert_array_equal(
            reader.read(f"store/{name}"), read_wav(tmp_path / "loose" / name)
        )
        opened, inside = reader.locate(f"store/{name}")
        assert opened.folder == store and inside == name
        with pytest.raises(
            StageError,
            match="store/no/x_nohash_0.wav: no clip 'no/x_nohash_0.wav' in the clip store",
        ):
            reader.read("store/no/x_nohash_0.wav")
        with pytest.raises(StageError, match="loose/no/x.wav: no clip store holds it"):
            reader.read("loose/no/x.wav")


def test_npy_writer_appends_chunks_into_one_standard_file(tmp_path):
    rows = np.arange(7 * 3 * 2, dtype=np.float32).reshape(7, 3, 2)
    with NpyWriter(tmp_path / "x.npy", "<f4", (3, 2)) as writer:
        for start in range(0, 7, 3):
            writer.append(rows[start : start + 3])
        digest = writer.close()
    loaded = np.load(tmp_path / "x.npy", mmap_mode="r")
    np.testing.assert_array_equal(loaded, rows)
    np.save(tmp_path / "same.npy", rows)
    assert (tmp_path / "x.npy").read_bytes() == (
        tmp_path / "same.npy"
    ).read_bytes()  # numpy's own bytes
    assert digest == hashlib.sha256(rows.tobytes()).hexdigest()
    with pytest.raises(ValueError, match=r"rows of shape \(2,\); expected \(3, 2\)"):
        NpyWriter(tmp_path / "bad.npy", "<f4", (3, 2)).append(np.zeros((1, 2)))


@pytest.mark.parametrize("meta", ['{"sample_rate": "fast"}', '{"sample_rate": ', "\xff\xfe"])
def test_a_damaged_store_json_is_named(tmp_path, meta):
    store = pack(make_dataset(tmp_path / "dataset"))
    (store / "store.json").write_bytes(meta.encode("latin-1"))
    with pytest.raises(StageError, match=r"store\.json: "):
        ClipStore(store)
