"""Train a keyword model on the featurized clips, as the original train.py does.

Each step samples a batch with replacement (seeded), uses the learning rate of its stage of the
piecewise-constant schedule, and minimises sparse softmax cross entropy with dropout. Validation
accuracy and the confusion matrix are logged every ``eval_step_interval`` steps and at the last
step; checkpoints (checkpoints.py) let a killed run resume where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core import fs, paths
from pipeline.core.errors import StageError
from pipeline.core.labels import read_labels, write_labels
from pipeline.core.metrics_files import write_metrics
from pipeline.core.schema import Section
from pipeline.data.feature_store import read_features
from pipeline.evaluation.metrics import confusion_matrix
from pipeline.training.batches import step_batches
from pipeline.training.checkpoints import (
    config_hash,
    restore_checkpoint,
    save_checkpoint,
)
from pipeline.training.config import TrainConfig
from pipeline.training.devices import Placement, detect_placement, make_strategy
from pipeline.training.logs import TrainingLog, write_curve
from pipeline.training.optim import learning_rate_at, make_optimizer, predicted_labels

log = logging.getLogger("pipeline.train")

PREDICT_BATCH = 512


@dataclass(frozen=True)
class TrainOutputs:
    """Where a run writes (the train stage's outs, and the checkpoints and logs beside them)."""

    model_dir: Path = paths.MODEL_DIR
    checkpoint_dir: Path = paths.CHECKPOINT_DIR
    logs_dir: Path = paths.LOGS_DIR
    metrics_path: Path = paths.TRAIN_METRICS
    curve_path: Path = paths.TRAIN_CURVE


@dataclass
class TrainingData:
    """What featurize wrote, checked: labels, features meta, training and validation arrays."""

    labels: list[str]
    features_meta: dict[str, Any]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])


def load_training_data(features_dir: Path) -> TrainingData:
    labels_path, meta_path = features_dir / "labels.txt", features_dir / "meta.json"
    for path in (labels_path, meta_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found (run the featurize stage first)")
    labels = read_labels(labels_path)
    try:
        features_meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StageError(f"{meta_path}: not valid JSON ({exc})") from None
    x_train, y_train = read_features(features_dir, "train", len(labels))
    x_val, y_val = read_features(features_dir, "validation", len(labels))
    if x_train.shape[1:] != x_val.shape[1:]:
        raise StageError(
            f"{features_dir}: train features {x_train.shape[1:]} and validation "
            f"{x_val.shape[1:]} differ in shape"
        )
    return TrainingData(labels, features_meta, x_train, y_train, x_val, y_val)


class Session:
    """The model, its optimizer and the compiled train and predict steps of one run.

    ``placement`` (devices.py): the CPU, one GPU or several mirrored; detected when None. With
    the CPU and float32 (the defaults) this is a plain TensorFlow program, as before.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        data: TrainingData,
        model_options: Section | None,
        placement: Placement | None = None,
    ):
        import keras
        import tensorflow as tf

        from pipeline.models import build_model
        from pipeline.training.distributed import make_step
        from pipeline.training.precision import dtype_policy, policy_name, wrap_optimizer

        keras.utils.set_random_seed(cfg.seed)
        tf.config.experimental.enable_op_determinism()
        self.placement = detect_placement() if placement is None else placement
        if cfg.batch_size % self.placement.replicas:
            raise StageError(
                f"params: train.batch_size {cfg.batch_size} must be a multiple of the "
                f"{self.placement.replicas} replicas ({self.placement.describe()})"
            )
        self.policy = policy_name(cfg.mixed_precision, on_gpu=self.placement.on_gpu)
        strategy = make_strategy(self.placement)
        self._build = lambda: build_model(
            cfg.model_architecture,
            data.feature_shape,
            len(data.labels),
            dropout=cfg.dropout,
            options=model_options,
        )
        with contextlib.ExitStack() as scope:
            if strategy is not None:
                scope.enter_context(strategy.scope())
            if self.policy != "float32":
                scope.enter_context(dtype_policy(self.policy))
            self.model = self._build()
            self.optimizer = wrap_optimizer(
                make_optimizer(cfg.optimizer, cfg.learning_rate[0]), self.policy
            )
            self.optimizer.build(self.model.trainable_variables)
        self.plain = strategy is None and self.policy == "float32"
        self.train_step = make_step(
            self.model, self.optimizer, strategy, self.policy, cfg.label_smoothing
        )
        self._predict_step = tf.function(
            lambda x: predicted_labels(self.model(x, training=False)), reduce_retracing=True
        )

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                self._predict_step(x[i : i + PREDICT_BATCH]).numpy()
                for i in range(0, len(x), PREDICT_BATCH)
            ]
        )

    def export_model(self):
        """The trained logits model to save: itself, or a float32 copy made outside any strategy."""
        if self.plain:
            return self.model
        from pipeline.training.precision import float32_copy

        return float32_copy(self.model, self._build)


def train(
    cfg: TrainConfig,
    features_dir=paths.FEATURES_DIR,
    outputs: TrainOutputs = TrainOutputs(),
    model_options: Section | None = None,
    keep_checkpoints: int = 3,
    progress: bool = True,
    placement: Placement | None = None,
) -> dict[str, Any]:
    """Train, resuming from a matching checkpoint; write the model folder and metrics.

    Returns the run's metrics (those of ``metrics_path`` plus its wall-clock facts).
    """
    from pipeline.models import get_model

    features_dir = Path(features_dir)
    if model_options is None:
        model_options = get_model(cfg.model_architecture).options()
    # Everything of this run's configuration: the train section and the model's own options.
    settings = {**cfg.to_dict(), "model_options": model_options.to_dict()}
    # A failed or killed run must leave no model behind (DVC would otherwise cache a stale one).
    fs.remove(outputs.model_dir)
    for stale in outputs.model_dir.parent.glob(f".{outputs.model_dir.name}.*.tmp"):
        fs.remove(stale)
    data = load_training_data(features_dir)
    stamp = config_hash(settings, data.features_meta)
    if cfg.spec_augment:
        from pipeline.training.spec_augment import spec_augment as augment_fn
    else:
        augment_fn = None

    session = Session(cfg, data, model_options, placement)
    log.info("training on %s (%s)", session.placement.describe(), session.policy)
    outputs.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    state = restore_checkpoint(outputs.checkpoint_dir, stamp, session.model, session.optimizer)
    rng = np.random.default_rng(cfg.seed)
    if state is None:
        state = {
            "config_hash": stamp,
            "step": 0,
            "seconds": 0.0,
            "curve": [],
            "window": [0.0, 0.0, 0],
        }
        fs.remove(outputs.logs_dir)
    else:
        rng.bit_generator.state = state["rng"]
    resumed_from = state["step"]
    with TrainingLog(outputs.logs_dir, data.labels, resume=resumed_from > 0) as sinks:
        _run_steps(
            cfg,
            data,
            session,
            state,
            rng,
            augment_fn,
            sinks,
            outputs.checkpoint_dir,
            keep_checkpoints,
            progress,
        )
    return _write_outputs(cfg, model_options, data, session, state, stamp, resumed_from, outputs)


def _run_steps(
    cfg: TrainConfig,
    data: TrainingData,
    session: Session,
    state: dict[str, Any],
    rng: np.random.Generator,
    augment_fn,
    sinks: TrainingLog,
    checkpoint_dir: Path,
    keep_checkpoints: int,
    progress: bool,
) -> None:
    """The loop from ``state["step"] + 1`` to the last step; ``state`` is updated in place."""
    import tensorflow as tf
    from tqdm import tqdm

    total_steps = cfg.total_steps
    # Running sums of (loss, accuracy, count) over the steps since the last evaluation.
    loss_sum, acc_sum, count = state["window"]
    started = time.perf_counter()
    with tqdm(
        total=total_steps,
        initial=state["step"],
        desc=f"train {cfg.model_architecture}",
        unit="step",
        disable=not progress,
    ) as bar:
        for step, xb, yb in step_batches(
            cfg, data.x_train, data.y_train, state["step"] + 1, rng, augment_fn
        ):
            rate = learning_rate_at(step, cfg.how_many_training_steps, cfg.learning_rate)
            loss, acc, finite = session.train_step(xb, yb, tf.constant(rate, tf.float32))
            loss, acc = float(loss), float(acc)
            if cfg.check_nans and not bool(finite):
                raise StageError(
                    f"training step {step}: loss or gradients are NaN/Inf (loss {loss}, "
                    f"learning rate {rate})"
                )
            loss_sum, acc_sum, count = loss_sum + loss, acc_sum + acc, count + 1
            bar.update(1)
            if step % cfg.eval_step_interval == 0 or step == total_steps:
                predicted = session.predict(data.x_val)
                row = {
                    "step": step,
                    "learning_rate": rate,
                    "loss": loss_sum / count,
                    "train_accuracy": acc_sum / count,
                    "validation_accuracy": float(np.mean(predicted == data.y_val)),
                }
                state["curve"].append(row)
                loss_sum, acc_sum, count = 0.0, 0.0, 0
                bar.set_postfix(loss=f"{row['loss']:.3f}", val=f"{row['validation_accuracy']:.3f}")
                matrix = confusion_matrix(data.y_val, predicted, len(data.labels))
                sinks.evaluation(row, matrix, len(data.y_val))
            if step % cfg.save_step_interval == 0 or step == total_steps:
                state.update(
                    step=step,
                    seconds=state["seconds"] + time.perf_counter() - started,
                    rng=rng.bit_generator.state,
                    window=[loss_sum, acc_sum, count],
                )
                started = time.perf_counter()
                save_checkpoint(
                    checkpoint_dir, step, session.model, session.optimizer, state, keep_checkpoints
                )


def _write_outputs(
    cfg: TrainConfig,
    model_options: Section,
    data: TrainingData,
    session: Session,
    state: dict[str, Any],
    stamp: str,
    resumed_from: int,
    outputs: TrainOutputs,
) -> dict[str, Any]:
    """The model folder, the metric and the curve (committed) and run.json (wall-clock facts)."""
    from pipeline.models.io import count_parameters, save_model_file, with_softmax

    final, seconds = state["curve"][-1], float(state["seconds"])
    parameters = count_parameters(session.model)
    metrics = {
        "architecture": cfg.model_architecture,
        "parameters": parameters,
        "steps": cfg.total_steps,
        "train_accuracy": final["train_accuracy"],
        "validation_accuracy": final["validation_accuracy"],
        "loss": final["loss"],
    }
    # The committed metric holds only what a rerun reproduces exactly; wall-clock facts of this
    # run (time, speed, where it resumed) go to the logs, so a fresh clone's `dvc repro` leaves
    # metrics/ and dvc.lock unchanged.
    run_facts = {
        "resumed_from_step": resumed_from,
        "seconds": round(seconds, 3),
        "examples_per_second": round(cfg.total_steps * cfg.batch_size / seconds, 1)
        if seconds > 0
        else None,
        "placement": session.placement.describe(),
        "replicas": session.placement.replicas,
        "dtype_policy": session.policy,
    }
    with fs.atomic_dir(outputs.model_dir) as tmp:
        save_model_file(with_softmax(session.export_model()), tmp / "model.keras")
        write_labels(tmp / "labels.txt", data.labels)
        fs.atomic_write_json(
            tmp / "meta.json",
            {
                "architecture": cfg.model_architecture,
                "parameters": parameters,
                "feature_shape": list(data.feature_shape),
                "labels": data.labels,
                "features": data.features_meta,
                "train": cfg.to_dict(),
                "model_options": model_options.to_dict(),
                "config_hash": stamp,
            },
        )
    write_metrics(outputs.metrics_path, metrics)
    fs.atomic_write_json(Path(outputs.logs_dir) / "run.json", run_facts)
    write_curve(outputs.curve_path, state["curve"])
    return {**metrics, **run_facts}
