"""Benchmark: what deleting the extracted WAVs costs while packing them into a clip store.

The download stage extracts the archive into a temporary folder, then packs the clips into
``data/raw/dataset`` (``pipeline.data.clip_store.pack_folder``). At full size (105,835 files) the
packing took 7 min 21 s in a ``bench/scale.py`` run on a heavily loaded machine (240 clips/s),
and the delete of each file once packed was suspected (ext4 mounted with ``discard`` here). This
writes ``--files`` one-second WAVs (35 word folders, like an extraction), flushes them to disk
(``sync``, as 3 GB extracted a minute earlier are), and times, each on a fresh copy:

- ``pack_folder(consume=True)``: what the stage does, deleting each file right after reading it;
- ``pack, then rmtree``: pack without deleting, then remove the folder once;
- ``pack, rmtree per word``: delete each word folder once all its clips are packed;
- ``pack only``: packing without deleting anything (the floor).

    python -m bench.pack_unlink                 # 20,000 files (640 MB under --work)
    python -m bench.pack_unlink --files 5000

Everything goes under ``--work`` (default /tmp/kws-pack-unlink), deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.core.audio import encode_pcm16
from pipeline.data.clip_store import list_wavs, pack_folder

RATE = 16000
VARIANTS = ["pack_folder(consume=True)", "pack, then rmtree", "pack, rmtree per word", "pack only"]


def make_folder(root: Path, files: int, words: int = 35) -> None:
    rng = np.random.default_rng(0)
    pcm = rng.integers(-2000, 2000, RATE, dtype=np.int16)
    for i in range(files):
        folder = root / f"word{i % words:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:08x}_nohash_0.wav").write_bytes(encode_pcm16(np.roll(pcm, i), RATE))
    os.sync()


def run(variant: str, src: Path, dest: Path) -> tuple[float, float]:
    """(seconds packing, seconds deleting afterwards)."""
    start = time.perf_counter()
    if variant == "pack_folder(consume=True)":
        pack_folder(src, dest, RATE, consume=True, progress=False)
    elif variant == "pack, rmtree per word":
        by_word: dict[Path, int] = {}
        for path in list_wavs(src):
            by_word[path.parent] = by_word.get(path.parent, 0) + 1
        pack_folder(
            src, dest, RATE, consume=False, progress=False
        )  # packing time, then the deletes
        packed = time.perf_counter()
        for folder in by_word:
            shutil.rmtree(folder)
        return packed - start, time.perf_counter() - packed
    else:
        pack_folder(src, dest, RATE, consume=False, progress=False)
    packed = time.perf_counter()
    if variant == "pack, then rmtree":
        shutil.rmtree(src)
    return packed - start, time.perf_counter() - packed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument(
        "--variants",
        default="",
        help="comma-separated indices into VARIANTS, repeats allowed (default: each once)",
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/kws-pack-unlink"))
    args = parser.parse_args(argv)
    shutil.rmtree(args.work, ignore_errors=True)
    variants = [VARIANTS[int(i)] for i in args.variants.split(",")] if args.variants else VARIANTS
    print(f"{args.files} one-second WAV files; load {os.getloadavg()[0]:.2f}")
    print("| variant | pack | delete after | total | files/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    try:
        for variant in variants:
            src, dest = args.work / "extract", args.work / "store"
            make_folder(src, args.files)
            pack_s, delete_s = run(variant, src, dest)
            total = pack_s + delete_s
            print(
                f"| {variant} | {pack_s:.1f} s | {delete_s:.1f} s | {total:.1f} s | "
                f"{args.files / total:,.0f} |",
                flush=True,
            )
            shutil.rmtree(args.work)
            os.sync()
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    print(f"load at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
