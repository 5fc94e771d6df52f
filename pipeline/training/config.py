"""The ``train`` section: architecture, schedule, optimizer and the loop's intervals."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.errors import ParamError
from pipeline.core.schema import (
    Section,
    Spec,
    boolean,
    integer,
    list_of,
    number,
    param,
    random_seed,
    text,
)
from pipeline.models.registry import MODELS
from pipeline.training.optim import OPTIMIZERS


@dataclass(frozen=True)
class TrainConfig(Section):
    section = "train"

    model_architecture: str = param("ds_cnn", text(MODELS))
    # Piecewise-constant schedule: one learning rate per stage of steps (equal-length lists).
    how_many_training_steps: list = param([2000, 500], list_of(integer(1)))
    learning_rate: list = param([0.002, 0.0002], list_of(Spec((int, float), low=0, high=10)))
    batch_size: int = param(100, integer(1, 100000))
    optimizer: str = param("adam", text(OPTIMIZERS))
    dropout: float = param(0.3, number(0, 0.99))
    # Targets 1 - s on the label, s spread over all labels (0 = off, the original's loss).
    label_smoothing: float = param(0.0, number(0, 0.99))
    eval_step_interval: int = param(250, integer(1))
    save_step_interval: int = param(100, integer(1))
    check_nans: bool = param(False, boolean())
    spec_augment: bool = param(False, boolean())
    # Opt-in: float16 (GPU) / bfloat16 (CPU) compute with float32 variables (precision.py).
    mixed_precision: bool = param(False, boolean())
    # Opt-in: sample and augment batches ahead in tf.data with stateless ops seeded by
    # (seed, step) (online_augment.py): time shift of up to online_time_shift_frames + masks.
    online_augment: bool = param(False, boolean())
    online_time_shift_frames: int = param(10, integer(0, 1000))
    seed: int = param(37, random_seed())

    def __post_init__(self):
        if len(self.how_many_training_steps) != len(self.learning_rate):
            raise ParamError(
                "params: train.how_many_training_steps and train.learning_rate must have the same "
                f"length (got {len(self.how_many_training_steps)} and {len(self.learning_rate)})"
            )
        if self.online_augment and self.spec_augment:
            raise ParamError(
                "params: train.online_augment applies its own time and frequency masks; "
                "set train.spec_augment: false with it (both would mask every batch twice)"
            )

    @property
    def total_steps(self) -> int:
        return int(sum(self.how_many_training_steps))
