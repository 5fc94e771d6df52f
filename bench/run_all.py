"""Run the speed benchmarks in turn; each prints its own table (see the README for the latest).

    python -m bench.run_all                       # the speed benchmarks (what `make bench` runs)
    python -m bench.run_all --skip streaming
    python -m bench.run_all --research            # then the accuracy studies of bench.research

Each runs as ``python -m bench.<name>`` in its own process from the repository root. Left out
(see their docstrings): ``scale``, ``numerics`` and ``pack_unlink`` (minutes to an hour of disk
and DVC work), ``streaming_export`` (needs pipeline run folders).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.common import REPO

SPEED = [
    "augmentation",
    "train_throughput",
    "latency",
    "streaming",
    "embedding_speed",
    "extraction",
]
RESEARCH = ["real_speech", "kfold", "operating_point"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", nargs="*", default=[], choices=SPEED + RESEARCH)
    parser.add_argument(
        "--research",
        action="store_true",
        help="also run " + ", ".join(f"bench.research.{name}" for name in RESEARCH),
    )
    args = parser.parse_args(argv)
    modules = [f"bench.{name}" for name in SPEED if name not in args.skip]
    if args.research:
        modules += [f"bench.research.{name}" for name in RESEARCH if name not in args.skip]
    failed = []
    for module in modules:
        print(f"\n=== python -m {module}", flush=True)
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", module], cwd=REPO)
        print(
            f"=== python -m {module}: exit {result.returncode} "
            f"in {time.perf_counter() - start:.0f} s"
        )
        if result.returncode:
            failed.append(module)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
