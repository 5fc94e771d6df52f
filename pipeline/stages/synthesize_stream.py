"""Stage `synthesize_stream`: a long recording of test-split words over background noise, and its
ground truth (data/stream/stream.wav, stream_labels.txt).

Usage: ``python -m pipeline.stages.synthesize_stream [--params params.yaml]``.
"""
from __future__ import annotations

import argparse
import logging

from pipeline.cli import run_main
from pipeline.core import paths
from pipeline.core.clip import ClipFormat
from pipeline.core.labels import UNKNOWN_LABEL
from pipeline.core.params import load_params
from pipeline.data.clip_store import ClipReader
from pipeline.data.manifest import MANIFEST_NAMES
from pipeline.streaming.config import StreamConfig
from pipeline.streaming.synthesize import (
    background_clips,
    read_split_manifest,
    synthesize,
    write_stream,
)

log = logging.getLogger(__name__)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(paths.PARAMS))
    args = parser.parse_args(argv)
    cfg, clip = load_params(args.params, StreamConfig, ClipFormat)
    word_clips, unknown = read_split_manifest(paths.SPLIT_DIR / MANIFEST_NAMES["testing"], paths.SPLIT_LABELS)
    backgrounds = background_clips(paths.DATASET_DIR)
    with ClipReader() as clips:
        audio, labels = synthesize(word_clips, unknown, backgrounds, cfg, clip.sample_rate, read=clips.read)
    write_stream(paths.STREAM_DIR, audio, labels, clip.sample_rate)
    unknown_count = sum(1 for label, _ in labels if label == UNKNOWN_LABEL)
    log.info("wrote %s: %.0f s, %d words (%d unknown)", paths.STREAM_WAV,
             len(audio) / clip.sample_rate, len(labels), unknown_count)
    return 0


if __name__ == "__main__":
    run_main(main)
