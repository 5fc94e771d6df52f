"""Stage `train`: train a keyword model on the featurized clips, as the original train.py does.

Each step samples a batch with replacement (seeded), uses the learning rate of its stage of the
piecewise-constant schedule, and minimises sparse softmax cross entropy with dropout. Validation
accuracy and the confusion matrix are logged every ``eval_step_interval`` steps and at the last
step. Checkpoints hold the model, the optimizer, the step and the sampling RNG state, and are
stamped with a hash of the configuration, so a killed run resumes where it stopped while a
changed configuration always starts afresh.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from pipeline import fsutil
from pipeline.cli import StageError, run_main
from pipeline.config import load_params
from pipeline.labels import read_labels, write_labels

log = logging.getLogger("pipeline.train")

FEATURES_DIR = Path("data/features")
MODEL_DIR = Path("models/keras")
CHECKPOINT_DIR = Path("models/checkpoints")
LOGS_DIR = Path("models/logs")
METRICS_PATH = Path("metrics/train.json")
CURVE_PATH = Path("metrics/train_curve.csv")
KEEP_CHECKPOINTS = 3
CURVE_FIELDS = ("step", "learning_rate", "loss", "train_accuracy", "validation_accuracy")
_CKPT_RE = re.compile(r"^ckpt-(\d+)\.npz$")


def learning_rate_at(step: int, steps: list[int], rates: list[float]) -> float:
    """The original's piecewise-constant schedule: step (1-based) s uses rates[i] for the first
    stage i whose cumulative end is >= s."""
    total = 0
    for count, rate in zip(steps, rates):
        total += count
        if step <= total:
            return float(rate)
    return float(rates[-1])


def load_split(features_dir: Path, name: str, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Read ``<name>.npz`` and check it holds features and in-range integer labels."""
    path = Path(features_dir) / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (run the featurize stage first)")
    try:
        with np.load(path) as data:
            x, y = data["x"], data["y"]
    except (KeyError, ValueError, OSError) as exc:
        raise StageError(f"{path}: not a features file with arrays x and y ({exc})") from None
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise StageError(f"{path}: expected x [N, frames, bins] and y [N], got x {x.shape} and y {y.shape}")
    if len(y) == 0:
        raise StageError(f"{path}: holds no examples")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= num_labels:
        raise StageError(f"{path}: labels must be integers in [0, {num_labels}), got {y.dtype} in [{y.min()}, {y.max()}]")
    return x.astype(np.float32, copy=False), y.astype(np.int32, copy=False)


def config_hash(settings: dict[str, Any], features_meta: dict[str, Any], features_dir: Path) -> str:
    """Hash of everything a checkpoint depends on: train settings, features meta, data bytes."""
    data = {name: fsutil.sha256_file(Path(features_dir) / f"{name}.npz") for name in ("train", "validation")}
    blob = json.dumps({"train": settings, "features": features_meta, "data": data}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def make_optimizer(name: str, learning_rate: float):
    import keras

    if name == "gradient_descent":
        return keras.optimizers.SGD(learning_rate)
    if name == "momentum":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    raise ValueError(f"unknown optimizer {name!r}")


def make_train_step(model, optimizer):
    """A compiled step ``(x, y, learning_rate) -> (loss, batch accuracy, all finite)``: sparse
    softmax cross entropy on the logits, dropout on, one optimizer update."""
    import keras
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(reduce_retracing=True)
    def train_step(x, y, rate):
        optimizer.learning_rate.assign(rate)
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = loss_fn(y, logits)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        predicted = tf.argmax(logits, axis=1, output_type=tf.int32)
        accuracy = tf.reduce_mean(tf.cast(tf.equal(predicted, y), tf.float32))
        finite = tf.math.is_finite(loss) & tf.math.is_finite(tf.linalg.global_norm(grads))
        return loss, accuracy, finite

    return train_step


# ----------------------------------------------------------------------------- checkpoints


def _checkpoints(directory: Path) -> list[tuple[int, Path]]:
    found = []
    if directory.is_dir():
        for path in directory.iterdir():
            match = _CKPT_RE.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
    return sorted(found)


def save_checkpoint(directory: Path, step: int, model, optimizer, state: dict[str, Any], keep: int) -> Path:
    """Write model + optimizer variables and ``state`` (JSON) atomically; keep the last ``keep``."""
    arrays = {f"model_{i}": np.asarray(v.numpy()) for i, v in enumerate(model.variables)}
    arrays.update({f"optimizer_{i}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)})
    arrays["state"] = np.array(json.dumps(state, sort_keys=True))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path = directory / f"ckpt-{step:08d}.npz"
    fsutil.atomic_write_bytes(path, buffer.getvalue())
    for _, old in _checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def restore_checkpoint(directory: Path, expected_hash: str, model, optimizer) -> dict[str, Any] | None:
    """Load the newest readable checkpoint made with ``expected_hash``; delete stale ones.

    Returns its state dict, or None (and an emptied folder) when there is nothing to resume.
    """
    for step, path in reversed(_checkpoints(directory)):
        try:
            with np.load(path) as data:
                state = json.loads(str(data["state"]))
                if state.get("config_hash") != expected_hash:
                    log.info("checkpoint %s was made with another configuration; starting afresh", path)
                    break
                model_values = [data[f"model_{i}"] for i in range(len(model.variables))]
                optimizer_values = [data[f"optimizer_{i}"] for i in range(len(optimizer.variables))]
        except (OSError, ValueError, KeyError) as exc:
            log.warning("checkpoint %s is unreadable (%s); trying an older one", path, exc)
            continue
        shapes_ok = all(tuple(v.shape) == a.shape for v, a in zip(model.variables, model_values))
        shapes_ok &= all(tuple(v.shape) == a.shape for v, a in zip(optimizer.variables, optimizer_values))
        if not shapes_ok:
            log.warning("checkpoint %s does not fit the model; starting afresh", path)
            break
        for variable, value in zip(model.variables, model_values):
            variable.assign(value)
        for variable, value in zip(optimizer.variables, optimizer_values):
            variable.assign(value)
        log.info("resuming from %s (step %d)", path, step)
        return state
    fsutil.remove(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return None


# ----------------------------------------------------------------------------- training


def _confusion(actual: np.ndarray, predicted: np.ndarray, num_labels: int) -> np.ndarray:
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(matrix, (actual, predicted), 1)
    return matrix


def _load_spec_augment() -> Callable:
    try:
        from pipeline.augment import spec_augment
    except ImportError as exc:
        raise StageError(f"train.spec_augment is true but pipeline.augment.spec_augment is unavailable ({exc})") from None
    return spec_augment


def train(
    features_dir: Path = FEATURES_DIR,
    model_dir: Path = MODEL_DIR,
    checkpoint_dir: Path = CHECKPOINT_DIR,
    logs_dir: Path = LOGS_DIR,
    metrics_path: Path = METRICS_PATH,
    curve_path: Path = CURVE_PATH,
    *,
    model_architecture: str,
    how_many_training_steps: list[int],
    learning_rate: list[float],
    batch_size: int,
    optimizer: str,
    dropout: float,
    eval_step_interval: int,
    save_step_interval: int,
    check_nans: bool,
    spec_augment: bool,
    seed: int,
    keep_checkpoints: int = KEEP_CHECKPOINTS,
    progress: bool = True,
) -> dict[str, Any]:
    """Train, resuming from a matching checkpoint; write the model folder and metrics.

    Returns the metrics written to ``metrics_path``.
    """
    features_dir, model_dir = Path(features_dir), Path(model_dir)
    checkpoint_dir, logs_dir = Path(checkpoint_dir), Path(logs_dir)
    settings = {
        "model_architecture": model_architecture,
        "how_many_training_steps": list(how_many_training_steps),
        "learning_rate": list(learning_rate),
        "batch_size": batch_size,
        "optimizer": optimizer,
        "dropout": dropout,
        "eval_step_interval": eval_step_interval,
        "save_step_interval": save_step_interval,
        "check_nans": check_nans,
        "spec_augment": spec_augment,
        "seed": seed,
    }
    if len(how_many_training_steps) != len(learning_rate):
        raise StageError("how_many_training_steps and learning_rate must have the same length")
    # A failed or killed run must leave no model behind (DVC would otherwise cache a stale one).
    fsutil.remove(model_dir)
    for stale in model_dir.parent.glob(f".{model_dir.name}.*.tmp"):
        fsutil.remove(stale)

    labels_path = features_dir / "labels.txt"
    meta_path = features_dir / "meta.json"
    if not labels_path.is_file():
        raise FileNotFoundError(f"{labels_path}: not found (run the featurize stage first)")
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path}: not found (run the featurize stage first)")
    labels = read_labels(labels_path)
    try:
        features_meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise StageError(f"{meta_path}: not valid JSON ({exc})") from None
    x_train, y_train = load_split(features_dir, "train", len(labels))
    x_val, y_val = load_split(features_dir, "validation", len(labels))
    if x_train.shape[1:] != x_val.shape[1:]:
        raise StageError(f"{features_dir}: train features {x_train.shape[1:]} and validation {x_val.shape[1:]} differ in shape")
    feature_shape = tuple(int(d) for d in x_train.shape[1:])
    stamp = config_hash(settings, features_meta, features_dir)
    augment_fn = _load_spec_augment() if spec_augment else None

    import keras
    import tensorflow as tf
    from tqdm import tqdm

    from pipeline.models import build_model, count_parameters, save_model_file, with_softmax

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    model = build_model(model_architecture, feature_shape, len(labels), dropout=dropout)
    opt = make_optimizer(optimizer, learning_rate[0])
    opt.build(model.trainable_variables)
    train_step = make_train_step(model, opt)

    @tf.function(reduce_retracing=True)
    def predict_step(x):
        return tf.argmax(model(x, training=False), axis=1, output_type=tf.int32)

    def predict(x: np.ndarray) -> np.ndarray:
        return np.concatenate([predict_step(x[i : i + 512]).numpy() for i in range(0, len(x), 512)])

    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    state = restore_checkpoint(checkpoint_dir, stamp, model, opt)
    rng = np.random.default_rng(seed)
    if state is None:
        state = {"config_hash": stamp, "step": 0, "seconds": 0.0, "curve": [], "window": [0.0, 0.0, 0]}
        fsutil.remove(logs_dir)
    else:
        rng.bit_generator.state = state["rng"]
    resumed_from = state["step"]
    total_steps = int(sum(how_many_training_steps))

    logs_dir.mkdir(parents=True, exist_ok=True)
    train_writer = tf.summary.create_file_writer(str(logs_dir / "train"))
    val_writer = tf.summary.create_file_writer(str(logs_dir / "validation"))
    live = _open_live(logs_dir / "dvclive", resume=resumed_from > 0)

    # Running sums of (loss, accuracy, count) over the steps since the last evaluation.
    loss_sum, acc_sum, count = state["window"]
    started = time.perf_counter()
    bar = tqdm(total=total_steps, initial=resumed_from, desc=f"train {model_architecture}", unit="step", disable=not progress)
    try:
        for step in range(resumed_from + 1, total_steps + 1):
            rate = learning_rate_at(step, how_many_training_steps, learning_rate)
            index = rng.integers(0, len(x_train), size=batch_size)
            xb, yb = x_train[index], y_train[index]
            if augment_fn is not None:
                xb = np.asarray(augment_fn(xb, rng), dtype=np.float32)
            loss, acc, finite = train_step(tf.constant(xb), tf.constant(yb), tf.constant(rate, tf.float32))
            loss, acc = float(loss), float(acc)
            if check_nans and not bool(finite):
                raise StageError(f"training step {step}: loss or gradients are NaN/Inf (loss {loss}, learning rate {rate})")
            loss_sum, acc_sum, count = loss_sum + loss, acc_sum + acc, count + 1
            bar.update(1)
            if step % eval_step_interval == 0 or step == total_steps:
                predicted = predict(x_val)
                val_acc = float(np.mean(predicted == y_val))
                row = {
                    "step": step,
                    "learning_rate": rate,
                    "loss": loss_sum / count,
                    "train_accuracy": acc_sum / count,
                    "validation_accuracy": val_acc,
                }
                state["curve"].append(row)
                loss_sum, acc_sum, count = 0.0, 0.0, 0
                matrix = _confusion(y_val, predicted, len(labels))
                bar.set_postfix(loss=f"{row['loss']:.3f}", val=f"{val_acc:.3f}")
                log.info(
                    "step %d: rate %g, train accuracy %.1f%%, loss %.4f, validation accuracy %.1f%% (N=%d)\n"
                    "confusion matrix (rows: actual, columns: predicted; %s):\n%s",
                    step, rate, 100 * row["train_accuracy"], row["loss"], 100 * val_acc, len(y_val),
                    " ".join(labels), matrix,
                )
                _log_eval(row, matrix, labels, train_writer, val_writer, live)
            if step % save_step_interval == 0 or step == total_steps:
                state.update(
                    step=step,
                    seconds=state["seconds"] + time.perf_counter() - started,
                    rng=rng.bit_generator.state,
                    window=[loss_sum, acc_sum, count],
                )
                started = time.perf_counter()
                save_checkpoint(checkpoint_dir, step, model, opt, state, keep_checkpoints)
    finally:
        bar.close()
        train_writer.close()
        val_writer.close()
        if live is not None:
            live.end()

    curve = state["curve"]
    final = curve[-1]
    seconds = float(state["seconds"])
    metrics = {
        "architecture": model_architecture,
        "parameters": count_parameters(model),
        "steps": total_steps,
        "resumed_from_step": resumed_from,
        "train_accuracy": final["train_accuracy"],
        "validation_accuracy": final["validation_accuracy"],
        "loss": final["loss"],
        "seconds": round(seconds, 3),
        "examples_per_second": round(total_steps * batch_size / seconds, 1) if seconds > 0 else None,
    }
    with fsutil.atomic_dir(model_dir) as tmp:
        save_model_file(with_softmax(model), tmp / "model.keras")
        write_labels(tmp / "labels.txt", labels)
        fsutil.atomic_write_json(
            tmp / "meta.json",
            {
                "architecture": model_architecture,
                "parameters": metrics["parameters"],
                "feature_shape": list(feature_shape),
                "labels": labels,
                "features": features_meta,
                "train": settings,
                "config_hash": stamp,
            },
        )
    # The committed metric holds only what a rerun reproduces exactly; wall-clock facts of this
    # run (time, speed, where it resumed) go to the logs, so a fresh clone's `dvc repro` leaves
    # metrics/ and dvc.lock unchanged.
    run_facts = ("resumed_from_step", "seconds", "examples_per_second")
    fsutil.atomic_write_json(metrics_path, {k: v for k, v in metrics.items() if k not in run_facts})
    fsutil.atomic_write_json(Path(logs_dir) / "run.json", {k: metrics[k] for k in run_facts})
    _write_curve(curve_path, curve)
    return metrics


def _open_live(directory: Path, resume: bool):
    """dvclive logger that writes only under ``directory`` (never dvc.yaml, no experiment)."""
    try:
        from dvclive import Live
    except ImportError:  # optional: TensorBoard logs are always written
        return None
    return Live(dir=str(directory), resume=resume, dvcyaml=None, save_dvc_exp=False, report=None)


def _summary(tag: str, value, step: int, plugin: str) -> None:
    """Write one TensorBoard summary with TensorFlow's own ops (the tensorboard package, which
    tf.summary.scalar needs, is not a dependency; TensorBoard reads these events all the same)."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = plugin
    tf.summary.write(tag, tf.constant(value), step=step, metadata=metadata.SerializeToString())


def _log_eval(row, matrix, labels, train_writer, val_writer, live) -> None:
    step = row["step"]
    with train_writer.as_default():
        _summary("accuracy", float(row["train_accuracy"]), step, "scalars")
        _summary("cross_entropy", float(row["loss"]), step, "scalars")
        _summary("learning_rate", float(row["learning_rate"]), step, "scalars")
    with val_writer.as_default():
        _summary("accuracy", float(row["validation_accuracy"]), step, "scalars")
        table = "| actual \\ predicted | " + " | ".join(labels) + " |\n|" + "---|" * (len(labels) + 1) + "\n"
        table += "".join(f"| {labels[i]} | " + " | ".join(str(v) for v in line) + " |\n" for i, line in enumerate(matrix))
        _summary("confusion_matrix", table, step, "text")
    if live is not None:
        live.step = step
        live.log_metric("train/accuracy", row["train_accuracy"])
        live.log_metric("train/loss", row["loss"])
        live.log_metric("validation/accuracy", row["validation_accuracy"])
        live.make_summary()


def _write_curve(path: Path, curve: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CURVE_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in curve:
        writer.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in CURVE_FIELDS})
    fsutil.atomic_write_text(path, buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    params = load_params(args.params, sections=["train"])["train"]
    metrics = train(progress=not args.no_progress and os.environ.get("KWS_NO_PROGRESS") is None, **params)
    log.info(
        "trained %s (%d parameters): validation accuracy %.1f%% in %.0f s (%s examples/s)",
        metrics["architecture"], metrics["parameters"], 100 * metrics["validation_accuracy"],
        metrics["seconds"], metrics["examples_per_second"],
    )
    return 0


if __name__ == "__main__":
    run_main(main)
