"""Stage `freeze`: export the trained model (SavedModel, TFLite float and int8) and measure
every format on the same test clips. The export records the decoder settings of params
``stream_eval`` (decoder.json), which the tools that decode default to, and the vocal-tract views
of params ``export`` (frontend.json), which every tool that loads it scores with.

Usage: ``python -m pipeline.stages.freeze [--params params.yaml] [--keras-dir models/keras]
[--out models/export] [--test-limit N]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli import parse_args, run_stage
from pipeline.core import paths
from pipeline.core.params import load_params
from pipeline.data.config import SplitConfig
from pipeline.data.manifest import MANIFEST_NAMES
from pipeline.export.config import ExportConfig
from pipeline.export.freeze import ExportInputs, freeze
from pipeline.frontends import FeatureConfig
from pipeline.streaming.config import StreamEvalConfig
from pipeline.streaming.operating_point import decoder_dict

DESCRIPTION = "Stage freeze: export the model (SavedModel, TFLite float and int8) and score each."


def export_summary(metrics: dict) -> str:
    """One line about the export: each format's test accuracy and the TFLite files' sizes."""
    accuracy = ", ".join(
        f"{name} {100 * value:.1f}%"
        for name, value in metrics["accuracy"].items()
        if value is not None and not name.endswith("_test_npz")
    )
    sizes = ", ".join(
        f"{name} {size / 1024:.0f} KiB"
        for name, size in metrics["size_bytes"].items()
        if name.endswith(".tflite")
    )
    return f"freeze: accuracy {accuracy}; {sizes}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default=str(paths.PARAMS), help="the parameters file")
    parser.add_argument("--keras-dir", default=str(paths.MODEL_DIR), help="the trained Keras model")
    parser.add_argument("--out", default=str(paths.EXPORT_DIR), help="where the export goes")
    parser.add_argument(
        "--metrics", default=str(paths.EXPORT_METRICS), help="the export's headline metrics"
    )
    parser.add_argument(
        "--features-dir", default=str(paths.FEATURES_DIR), help="the featurize stage's output"
    )
    parser.add_argument(
        "--split-dir", default=str(paths.SPLIT_DIR), help="the split stage's manifests"
    )
    parser.add_argument(
        "--test-limit",
        type=int,
        default=None,
        help="score only the first N test clips (quick checks)",
    )


def main(argv=None) -> int:
    args = parse_args(__name__, argv)
    features, split, decoder, export = load_params(
        args.params, FeatureConfig, SplitConfig, StreamEvalConfig, ExportConfig
    )
    keras_dir = Path(args.keras_dir)
    if not (keras_dir / "model.keras").is_file():
        raise FileNotFoundError(f"{keras_dir}/model.keras not found (run the train stage first)")
    inputs = ExportInputs(
        features_dir=Path(args.features_dir),
        test_manifest=Path(args.split_dir) / MANIFEST_NAMES["testing"],
        test_limit=args.test_limit,
        decoder=decoder_dict(decoder),
        views=tuple(export.views),
    )
    metrics = freeze(
        keras_dir, Path(args.out), Path(args.metrics), features, split.wanted_words, inputs
    )
    print(export_summary(metrics))
    return 0


if __name__ == "__main__":
    run_stage(main)
