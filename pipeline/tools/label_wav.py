"""Label one WAV file with any model, printing the top labels exactly as the original label_wav.

    python -m pipeline.tools.label_wav --model models/export --wav clip.wav [--how_many_labels 3]
    python -m pipeline.tools.label_wav --graph conv_actions_frozen.pb \\
        --labels conv_actions_labels.txt --wav clip.wav

Output, one line per label, best first: ``left (score = 0.81477)``. The model labels one window
(its clip, a second by default): a longer recording gets a note on standard error that only its
first window was labelled and that ``kws detect`` finds the words in all of it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from pipeline.cli import parse_args, run_main
from pipeline.core.audio import read_wav_header
from pipeline.core.errors import StageError, WavError

DESCRIPTION = "Label one WAV file with any model: the top labels and their scores."


def top_labels(scores: np.ndarray, labels: list[str], how_many: int) -> list[tuple[str, float]]:
    """The ``how_many`` best (label, score) pairs, highest score first (ties: lower index)."""
    order = np.argsort(-np.asarray(scores), kind="stable")[:how_many]
    return [(labels[i], float(scores[i])) for i in order]


def format_label(label: str, score: float) -> str:
    return f"{label} (score = {score:.5f})"


def label_wav(model_path, wav_path, labels_path=None, how_many_labels: int = 3) -> list[str]:
    """Lines to print for ``wav_path`` scored by the model at ``model_path``."""
    from pipeline.inference import load_model

    wav_path = Path(wav_path)
    try:
        data = wav_path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"WAV file not found: {wav_path}") from None
    except OSError as exc:
        raise WavError(wav_path, f"cannot read: {exc.strerror}") from None
    model = load_model(model_path, labels_path)
    scores = model.predict_wav_bytes(data, str(wav_path))
    frames, rate = read_wav_header(wav_path).num_frames, int(model.sample_rate)
    if frames > model.desired_samples:
        window = model.desired_samples / rate
        print(
            f"note: {wav_path}: {frames / rate:.2f} s is longer than the model's window; only "
            f"its first {window:.2f} s was labelled (`kws detect {wav_path}` finds the words "
            "in all of it)",
            file=sys.stderr,
        )
    return [
        format_label(label, score)
        for label, score in top_labels(scores, model.labels, how_many_labels)
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        "--graph",
        dest="model",
        required=True,
        help="models/export, a SavedModel, .tflite, .keras or frozen .pb",
    )
    parser.add_argument("--wav", required=True, help="16-bit mono PCM WAV file to label")
    parser.add_argument("--labels", default=None, help="labels file (default: beside the model)")
    parser.add_argument(
        "--how_many_labels",
        "--how-many-labels",
        type=int,
        default=3,
        help="how many labels to print, best first",
    )


def main(argv=None) -> int:
    args = parse_args(__name__, argv)
    if args.how_many_labels < 1:
        raise StageError("--how_many_labels must be at least 1")
    for line in label_wav(args.model, args.wav, args.labels, args.how_many_labels):
        print(line)
    return 0


if __name__ == "__main__":
    run_main(main)
