"""Stage `synthesize_stream`: a long recording of test-split words over background noise, and its
ground truth (data/stream/stream.wav, stream_labels.txt).

Usage: ``python -m pipeline.stages.synthesize_stream [--params params.yaml]``.
"""

from __future__ import annotations

import argparse
import logging

from pipeline.cli import parse_args, run_stage
from pipeline.core import paths
from pipeline.core.clip import ClipFormat
from pipeline.core.labels import UNKNOWN_LABEL
from pipeline.core.params import load_params
from pipeline.data.manifest import MANIFEST_NAMES
from pipeline.data.stream_synthesis import StreamConfig, split_streams, write_stream

DESCRIPTION = "Stage synthesize_stream: a long recording of test words over noise."

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default=str(paths.PARAMS), help="the parameters file")


def main(argv=None) -> int:
    args = parse_args(__name__, argv)
    cfg, clip = load_params(args.params, StreamConfig, ClipFormat)
    [(audio, labels)] = split_streams(
        paths.SPLIT_DIR / MANIFEST_NAMES["testing"],
        paths.SPLIT_LABELS,
        paths.DATASET_DIR,
        [cfg],
        clip.sample_rate,
        split="test",
        progress=True,
    )
    write_stream(paths.STREAM_DIR, audio, labels, clip.sample_rate)
    unknown_count = sum(1 for label, _ in labels if label == UNKNOWN_LABEL)
    log.info(
        "wrote %s: %.0f s, %d words (%d unknown)",
        paths.STREAM_WAV,
        len(audio) / clip.sample_rate,
        len(labels),
        unknown_count,
    )
    return 0


if __name__ == "__main__":
    run_stage(main)
