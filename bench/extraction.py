"""Benchmark: the checked extraction (data/acquire/archive.py) against Python's own extraction.

Builds a .tar.gz and a .zip of ``--clips`` one-second 16 kHz clips (noisy tones, so they compress
about as little as speech does) in a temporary folder, then extracts each with ``extract`` (links
resolved as text, every byte written by this project's writer, the tar read to its end, size
limits) and with the standard library (``tarfile`` with ``filter="data"``, ``zipfile.extractall``),
best of ``--repeat`` runs. Prints a markdown table.

    python -m bench.extraction                 # 5,000 clips (160 MB extracted)
    python -m bench.extraction --clips 500     # quick
"""

from __future__ import annotations

import argparse
import io
import shutil
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from pipeline.core.audio import encode_wav
from pipeline.data.acquire.archive import extract

RATE = 16000
WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def build(root: Path, clips: int) -> tuple[Path, Path, int]:
    """The two archives of the same clips; returns (tar.gz, zip, extracted bytes)."""
    rng = np.random.default_rng(0)
    t = np.arange(RATE) / RATE
    tar_path, zip_path, total = root / "clips.tar.gz", root / "clips.zip", 0
    with (
        tarfile.open(tar_path, "w:gz") as tar,
        zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf,
    ):
        for i in range(clips):
            audio = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 800) * t) + rng.normal(0, 0.05, RATE)
            data = encode_wav(audio.astype(np.float32), RATE)
            name = f"speech/{WORDS[i % len(WORDS)]}/{i:08x}_nohash_0.wav"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            zf.writestr(name, data)
            total += len(data)
    return tar_path, zip_path, total


def best(fn, dest: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        shutil.rmtree(dest, ignore_errors=True)
        start = time.perf_counter()
        fn(dest)
        times.append(time.perf_counter() - start)
    shutil.rmtree(dest, ignore_errors=True)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tar_path, zip_path, total = build(root, args.clips)

        def stdlib_tar(dest):
            with tarfile.open(tar_path, "r:gz") as tar:
                tar.extractall(dest, filter="data")

        def stdlib_zip(dest):
            with zipfile.ZipFile(zip_path) as zf:
                zf.extractall(dest)

        rows = [
            (
                "tar.gz",
                "extract (checked)",
                tar_path,
                best(lambda d: extract(tar_path, d), root / "o", args.repeat),
            ),
            (
                "tar.gz",
                'tarfile, filter="data"',
                tar_path,
                best(stdlib_tar, root / "o", args.repeat),
            ),
            (
                "zip",
                "extract (checked)",
                zip_path,
                best(lambda d: extract(zip_path, d), root / "o", args.repeat),
            ),
            ("zip", "zipfile.extractall", zip_path, best(stdlib_zip, root / "o", args.repeat)),
        ]
        print(f"{args.clips:,} clips, {total / 1e6:.0f} MB extracted; best of {args.repeat}\n")
        print("| archive | extraction | archive MB | seconds | clips/s |")
        print("| --- | --- | ---: | ---: | ---: |")
        for kind, how, path, seconds in rows:
            print(
                f"| {kind} | {how} | {path.stat().st_size / 1e6:.0f} | {seconds:.2f} | "
                f"{args.clips / seconds:,.0f} |"
            )


if __name__ == "__main__":
    main()
