"""How much other CPU numerics move the trained model's headline metrics (README, Reproducibility).

    python -m bench.numerics [--work /tmp/kws-numerics]

In a clone of this repository (HEAD) under --work: the default pipeline (`dvc repro`), then for
each setting below the train stage again from scratch with that setting in the environment and
the stages after it (`dvc repro -f -s train && dvc repro`), recording whether model.keras kept its
bytes and the headline metrics. The settings stand in for another machine: an instruction set
without AVX-512 for oneDNN, oneDNN off, one thread instead of all cores. Takes 20-40 minutes on
2 cores. Prints a table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.common import REPO
from pipeline.tools.compare_metrics import HEADLINES

SETTINGS = [
    ("defaults again", {}),
    ("ONEDNN_MAX_CPU_ISA=AVX2", {"ONEDNN_MAX_CPU_ISA": "AVX2"}),
    ("TF_ENABLE_ONEDNN_OPTS=0", {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    ("TF_NUM_INTRAOP_THREADS=1", {"TF_NUM_INTRAOP_THREADS": "1"}),
]


def run(cmd: list[str], cwd: Path, extra: dict | None = None) -> None:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "KWS_NO_PROGRESS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **(extra or {}),
    }
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)


def snapshot(work: Path) -> dict:
    values = {}
    for headline in HEADLINES:
        values[headline.label] = headline.read(
            json.loads((work / headline.path).read_text(encoding="utf-8"))
        )
    values["model.keras"] = hashlib.md5(
        (work / "models/keras/model.keras").read_bytes()
    ).hexdigest()
    return values


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/kws-numerics"))
    args = parser.parse_args(argv)
    work = args.work / "repo"
    if work.exists():
        shutil.rmtree(work)
    subprocess.run(["git", "clone", "-q", str(REPO), str(work)], check=True)
    run(["dvc", "repro"], work)
    rows = [("defaults", snapshot(work))]
    for name, extra in SETTINGS:
        shutil.rmtree(work / "models/checkpoints", ignore_errors=True)  # else it resumes at the end
        run(["dvc", "repro", "-f", "-s", "train"], work, extra)
        run(["dvc", "repro"], work, extra)
        rows.append((name, snapshot(work)))
    base = rows[0][1]
    print(f"CPU cores: {os.cpu_count()}; load: {os.getloadavg()[0]:.1f}")
    header = ["train ran with", "model.keras"] + [h.label for h in HEADLINES]
    print(" | ".join(header))
    for name, values in rows:
        same = (
            "—"
            if values is base
            else ("identical" if values["model.keras"] == base["model.keras"] else "differs")
        )
        print(" | ".join([name, same] + [h.show(values[h.label]) for h in HEADLINES]))
    print(
        " | ".join(
            ["largest change", ""]
            + [
                h.show_delta(max(abs(v[h.label] - base[h.label]) for _, v in rows)).lstrip("+")
                for h in HEADLINES
            ]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
