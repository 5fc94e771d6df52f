"""Stage `split`: assign every clip to training / validation / testing and write the manifests.

Usage: ``python -m pipeline.stages.split [--params params.yaml] [--raw data/raw]
[--out data/split] [--metrics metrics/split.json]``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from pipeline.cli import parse_args, run_stage
from pipeline.core import paths
from pipeline.core.labels import prepare_words_list
from pipeline.core.params import load_params
from pipeline.data.config import DataConfig, SplitConfig
from pipeline.data.manifest import SPLITS, read_skipped
from pipeline.data.split import build_split, write_split

DESCRIPTION = "Stage split: assign every clip to training / validation / testing."

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default=str(paths.PARAMS), help="the parameters file")
    parser.add_argument(
        "--raw", default=str(paths.RAW_DIR), help="the download stage's output folder"
    )
    parser.add_argument("--out", default=str(paths.SPLIT_DIR), help="where the manifests go")
    parser.add_argument(
        "--metrics", default=str(paths.SPLIT_METRICS), help="the split's headline counts"
    )


def main(argv=None) -> int:
    args = parse_args(__name__, argv)
    data, cfg = load_params(args.params, DataConfig, SplitConfig)
    raw = Path(args.raw)
    official = raw / paths.OFFICIAL_TEST_DIR.name if data.test_set == "official" else None
    splits, facts = build_split(
        raw / paths.DATASET_DIR.name,
        cfg,
        official_test_root=official,
        synthetic=data.synthetic,
        embedded=data.source == "embedded",
    )
    skipped = read_skipped(raw / paths.SKIPPED_CSV.name)
    metrics = write_split(
        args.out, args.metrics, splits, prepare_words_list(cfg.wanted_words), facts, skipped
    )
    log.info(
        "split: %s clips (training %d, validation %d, testing %d); test set: %s",
        metrics["total"],
        *(metrics["splits"][s]["total"] for s in SPLITS),
        facts["test_set"],
    )
    return 0


if __name__ == "__main__":
    run_stage(main)
