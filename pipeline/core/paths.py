"""Where each stage reads and writes, relative to the repository root: one home for every path.

dvc.yaml lists the same paths as the stages' outs (a test checks that they agree), and the stage
entry points take these as their defaults.
"""

from __future__ import annotations

from pathlib import Path

PARAMS = Path("params.yaml")
DOWNLOAD_CACHE = Path(".cache/downloads")

# download
RAW_DIR = Path("data/raw")
DATASET_DIR = RAW_DIR / "dataset"
OFFICIAL_TEST_DIR = RAW_DIR / "official_test"
SOURCE_JSON = RAW_DIR / "source.json"
SKIPPED_CSV = RAW_DIR / "skipped.csv"

# split
SPLIT_DIR = Path("data/split")
SPLIT_LABELS = SPLIT_DIR / "labels.txt"

# featurize
FEATURES_DIR = Path("data/features")

# train
MODEL_DIR = Path("models/keras")
CHECKPOINT_DIR = Path("models/checkpoints")
LOGS_DIR = Path("models/logs")

# freeze
EXPORT_DIR = Path("models/export")
# The export's operating point: the decoder settings it was built with (params stream_eval).
DECODER_NAME = "decoder.json"

# synthesize_stream
STREAM_DIR = Path("data/stream")
STREAM_WAV = STREAM_DIR / "stream.wav"
STREAM_LABELS = STREAM_DIR / "stream_labels.txt"

# metrics (committed to git; DVC metrics and plots)
METRICS_DIR = Path("metrics")
SPLIT_METRICS = METRICS_DIR / "split.json"
TRAIN_METRICS = METRICS_DIR / "train.json"
TRAIN_CURVE = METRICS_DIR / "train_curve.csv"
EVALUATE_METRICS = METRICS_DIR / "evaluate.json"
CONFUSION_CSV = METRICS_DIR / "confusion.csv"
CONFUSION_PNG = METRICS_DIR / "confusion.png"
EXPORT_METRICS = METRICS_DIR / "export.json"
STREAM_METRICS = METRICS_DIR / "stream.json"
STREAM_SWEEP = METRICS_DIR / "stream_threshold_sweep.csv"
# each metrics file's whole record (pipeline/core/metrics_files.py); not DVC metrics
METRICS_DETAILS_DIR = METRICS_DIR / "details"

# The folders that hold the stages' outputs, where their atomic writes put temporaries
# (pipeline/core/fs.py); every stage's start removes those that killed stages left there.
OUTPUT_FOLDERS = (
    DOWNLOAD_CACHE,
    RAW_DIR.parent,
    MODEL_DIR.parent,
    CHECKPOINT_DIR,
    METRICS_DIR,
    METRICS_DETAILS_DIR,
)
