"""Stage `evaluate`: score the trained model on the test split (accuracy, per-class P/R/F1,
confusion matrix as a DVC plot and a PNG).

Usage: ``python -m pipeline.stages.evaluate [--model-dir models/keras]
[--features-dir data/features]``.
"""

from __future__ import annotations

import argparse
import logging

from pipeline.cli import parse_args, run_stage
from pipeline.core import paths
from pipeline.evaluation.test_split import evaluate_test_split

DESCRIPTION = "Stage evaluate: score the trained model on the test split."

log = logging.getLogger("pipeline.evaluate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", default=str(paths.MODEL_DIR), help="the trained Keras model")
    parser.add_argument(
        "--features-dir", default=str(paths.FEATURES_DIR), help="the featurize stage's output"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__name__, argv)
    metrics = evaluate_test_split(args.model_dir, args.features_dir)
    log.info(
        "test accuracy %.2f%% (N=%d), macro F1 %.3f",
        100 * metrics["accuracy"],
        metrics["examples"],
        metrics["macro_f1"],
    )
    return 0


if __name__ == "__main__":
    run_stage(main)
