"""The training batches of each step: ``(step, x, y)`` from ``first_step`` to the last step.

Default: the original's sampling with replacement from the seeded numpy generator (its state is
checkpointed, so a resumed run continues the same sequence), with ``train.spec_augment`` applied
in numpy. With ``train.online_augment`` a ``tf.data`` pipeline samples and augments ahead of the
step with stateless ops seeded by ``(train.seed, step)`` (online_augment.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from pipeline.training.config import TrainConfig


def step_batches(
    cfg: TrainConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    first_step: int,
    rng: np.random.Generator,
    augment_fn: Callable | None,
) -> Iterator[tuple]:
    import tensorflow as tf

    if cfg.online_augment:
        from pipeline.training.online_augment import make_dataset

        dataset = make_dataset(
            x_train,
            y_train,
            cfg.seed,
            cfg.batch_size,
            first_step,
            cfg.total_steps,
            cfg.online_time_shift_frames,
        )
        for step, xb, yb in dataset:
            if augment_fn is not None:
                xb = tf.constant(np.asarray(augment_fn(xb.numpy(), rng), dtype=np.float32))
            yield int(step), xb, yb
        return
    for step in range(first_step, cfg.total_steps + 1):
        index = rng.integers(0, len(x_train), size=cfg.batch_size)
        xb, yb = x_train[index], y_train[index]
        if augment_fn is not None:
            xb = np.asarray(augment_fn(xb, rng), dtype=np.float32)
        yield step, tf.constant(xb), tf.constant(yb)
