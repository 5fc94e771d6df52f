"""Run every benchmark in turn; each prints its own table (see the README for the latest).

python bench/run_all.py                 # all of them
python bench/run_all.py --skip real_speech
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPTS = [
    "augmentation",
    "train_throughput",
    "latency",
    "streaming",
    "embedding_speed",
    "real_speech",
    "kfold",
    "operating_point",
    "extraction",
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", nargs="*", default=[], choices=SCRIPTS)
    args = parser.parse_args(argv)
    failed = []
    for name in SCRIPTS:
        if name in args.skip:
            continue
        print(f"\n=== bench/{name}.py", flush=True)
        start = time.perf_counter()
        result = subprocess.run([sys.executable, str(BENCH / f"{name}.py")], cwd=BENCH.parent)
        print(
            f"=== bench/{name}.py: exit {result.returncode} in {time.perf_counter() - start:.0f} s"
        )
        if result.returncode:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
