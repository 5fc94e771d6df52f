"""Score every clip of a folder with any model: accuracy, per-class accuracy, confusion matrix.

    python -m pipeline.tools.evaluate_dir --model models/export --data-dir DIR [--json OUT]

Two layouts are understood. The training layout (``<word>/*.wav``): a word in the model's labels
is its own class, any other word counts as ``_unknown_``, and ``_background_noise_`` is ignored.
The official test-set layout additionally has ``_unknown_/`` and ``_silence_/`` folders, which
are taken at their word. A file that is not a usable WAV is reported by name and skipped, and so
is anything that is not a regular file (a FIFO would never end the read, nor would a link to a
device such as ``/dev/zero``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pipeline.cli import parse_args, run_main
from pipeline.core.audio import fit_to_length, read_wav
from pipeline.core.errors import StageError, WavError
from pipeline.core.fs import atomic_write_json, check_output_file, not_a_regular_file
from pipeline.core.labels import BACKGROUND_NOISE_DIR, SILENCE_LABEL, UNKNOWN_LABEL

DESCRIPTION = (
    "Score every clip of a folder with any model: accuracy, per-class accuracy, confusion."
)

BATCH = 128


def list_clips(data_dir: Path, labels: list[str]) -> list[tuple[Path, str]]:
    """(path, expected label) of every clip, in sorted order."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data folder not found: {data_dir}")
    clips = []
    for folder in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        word = folder.name.lower()
        if word == BACKGROUND_NOISE_DIR:
            continue
        if word in labels:
            label = word
        elif UNKNOWN_LABEL in labels and word != SILENCE_LABEL:
            label = UNKNOWN_LABEL
        else:
            raise StageError(f"{folder}: the model has no label for {word!r}")
        clips += [(path, label) for path in sorted(folder.glob("*.wav"))]
    if not clips:
        raise StageError(f"{data_dir}: no <word>/*.wav clips found")
    return clips


def evaluate_dir(model, data_dir, batch_size: int = BATCH) -> dict[str, Any]:
    """Score ``data_dir`` with a loaded model (pipeline.inference) and return the results."""
    labels = list(model.labels)
    clips = list_clips(data_dir, labels)
    confusion = np.zeros((len(labels), len(labels)), np.int64)
    skipped = []
    with tqdm(total=len(clips), desc="evaluate", unit="clip") as bar:
        for start in range(0, len(clips), batch_size):
            audio, actual = [], []
            for path, label in clips[start : start + batch_size]:
                try:
                    problem = not_a_regular_file(path)
                    if problem:
                        raise WavError(path, problem)
                    samples = read_wav(path, model.sample_rate)
                except WavError as exc:
                    skipped.append({"path": str(path), "problem": exc.problem})
                    tqdm.write(f"skipped {exc}")
                    continue
                audio.append(fit_to_length(samples, model.desired_samples))
                actual.append(labels.index(label))
            if audio:
                predicted = model.predict_audio(np.stack(audio).astype(np.float32)).argmax(axis=1)
                np.add.at(confusion, (np.array(actual), predicted), 1)
            bar.update(len(clips[start : start + batch_size]))
    total = int(confusion.sum())
    per_class = {}
    for i, label in enumerate(labels):
        count = int(confusion[i].sum())
        if count:
            per_class[label] = {"accuracy": float(confusion[i, i] / count), "clips": count}
    return {
        "data_dir": str(data_dir),
        "accuracy": float(np.trace(confusion) / total) if total else None,
        "clips": total,
        "per_class": per_class,
        "labels": labels,
        "confusion_matrix": confusion.tolist(),
        "skipped": skipped,
    }


def report_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    if result["accuracy"] is None:
        lines.append("accuracy: n/a (no usable clips)")
    else:
        lines.append(f"accuracy: {100 * result['accuracy']:.2f}% ({result['clips']} clips)")
    for label, item in result["per_class"].items():
        lines.append(f"  {label:<12} {100 * item['accuracy']:6.2f}%  ({item['clips']} clips)")
    if result["skipped"]:
        lines.append(f"skipped {len(result['skipped'])} bad file(s):")
        lines += [f"  {s['path']}: {s['problem']}" for s in result["skipped"]]
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True, help="models/export, a SavedModel, .tflite, .keras or frozen .pb"
    )
    parser.add_argument("--data-dir", required=True, help="folder of <word>/*.wav clips")
    parser.add_argument("--labels", default=None, help="labels file (default: beside the model)")
    parser.add_argument("--json", default=None, help="write the results (and confusion) here")
    parser.add_argument("--batch-size", type=int, default=BATCH, help="clips scored per model call")


def main(argv=None) -> int:
    from pipeline.inference import load_model

    args = parse_args(__name__, argv)
    if args.json:
        check_output_file(args.json)
    model = load_model(args.model, args.labels)
    result = evaluate_dir(model, Path(args.data_dir), args.batch_size)
    result["model"] = str(args.model)
    for line in report_lines(result):
        print(line)
    if args.json:
        atomic_write_json(args.json, result)
    return 0


if __name__ == "__main__":
    run_main(main)
