"""Stage `train`: train the configured model on the featurized clips.

Usage: ``python -m pipeline.stages.train [--params params.yaml] [--no-progress]``.
"""

from __future__ import annotations

import argparse
import logging
import os

from pipeline.cli import parse_args, run_stage
from pipeline.core import paths
from pipeline.core.params import load_params
from pipeline.models.config import ModelConfig
from pipeline.training.config import TrainConfig
from pipeline.training.loop import train

DESCRIPTION = "Stage train: train the configured model on the featurized clips."

log = logging.getLogger("pipeline.train")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default=str(paths.PARAMS), help="the parameters file")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__name__, argv)
    cfg, models = load_params(args.params, TrainConfig, ModelConfig)
    progress = not args.no_progress and os.environ.get("KWS_NO_PROGRESS") is None
    metrics = train(
        cfg, model_options=models.options_for(cfg.model_architecture), progress=progress
    )
    log.info(
        "trained %s (%d parameters): validation accuracy %.1f%% in %.0f s (%s examples/s)",
        metrics["architecture"],
        metrics["parameters"],
        100 * metrics["validation_accuracy"],
        metrics["seconds"],
        metrics["examples_per_second"],
    )
    return 0


if __name__ == "__main__":
    run_stage(main)
