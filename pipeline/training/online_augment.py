"""On-the-fly augmentation in ``tf.data`` (``train.online_augment``, opt-in).

For machines where the accelerator would otherwise wait for the host: batches are sampled and
augmented by a ``tf.data`` pipeline that runs ahead of the training step (``prefetch``), and every
random choice is a stateless TensorFlow op seeded by ``(train.seed, step)``. So a step's batch
depends only on the seed and the step number: two runs see the same batches, a resumed run sees
the batches an uninterrupted one would have, and prefetching changes nothing.

Each example is shifted in time by up to ``shift_frames`` frames (the vacated frames take the
example's mean, the neutral value of non-centred MFCCs) and gets SpecAugment-style masks: up to
``TIME_MASKS`` bands of at most ``TIME_MASK_MAX`` frames and ``FREQ_MASKS`` bands of at most
``FREQ_MASK_MAX`` bins, also set to the mean. This is on top of featurize's precomputed copies.
"""

from __future__ import annotations

import numpy as np

TIME_MASKS, TIME_MASK_MAX = 2, 10
FREQ_MASKS, FREQ_MASK_MAX = 2, 8
# Seed streams: the batch indices and the augmentation of a step use different seeds.
_INDEX_STREAM, _AUGMENT_STREAM = 0, 1


def _seed(seed: int, step, stream: int):
    import tensorflow as tf

    # [seed, step * 2 + stream]: one distinct stateless seed per (step, stream).
    return tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64) * 2 + stream])


def batch_indices(seed: int, step, examples: int, batch_size: int):
    """The training examples of ``step`` (with replacement), an int64 tensor ``[batch_size]``."""
    import tensorflow as tf

    return tf.random.stateless_uniform(
        [batch_size],
        seed=_seed(seed, step, _INDEX_STREAM),
        minval=0,
        maxval=examples,
        dtype=tf.int64,
    )


def _band_mask(seeds, batch: int, length: int, count: int, max_width: int):
    """``[batch, length]`` booleans: ``count`` random bands of 0..max_width per example."""
    import tensorflow as tf

    positions = tf.range(length)[None, :]
    masked = tf.zeros([batch, length], tf.bool)
    max_width = min(max_width, length)
    for i in range(count):
        width = tf.random.stateless_uniform(
            [batch], seed=seeds[2 * i], minval=0, maxval=max_width + 1, dtype=tf.int32
        )
        # start uniform in [0, length - width]
        u = tf.random.stateless_uniform([batch], seed=seeds[2 * i + 1])
        start = tf.cast(tf.floor(u * tf.cast(length - width + 1, tf.float32)), tf.int32)
        band = (positions >= start[:, None]) & (positions < (start + width)[:, None])
        masked = masked | band
    return masked


def augment_batch(x, seed: int, step, shift_frames: int):
    """Augment a batch ``[batch, frames, bins]`` with the stateless ops of ``(seed, step)``."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x, tf.float32)
    batch, frames, bins = tf.shape(x)[0], x.shape[1], x.shape[2]
    seeds = tf.random.experimental.stateless_split(
        _seed(seed, step, _AUGMENT_STREAM), num=1 + 2 * (TIME_MASKS + FREQ_MASKS)
    )
    mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
    # Shifts and time masks at most a fifth of the clip (the full amounts on 98 MFCC frames; a
    # 1-frame embedding is never blanked whole).
    shift_frames = min(shift_frames, frames // 5)
    # Time shift: output frame t takes input frame t - shift; outside the clip, the mean.
    shift = tf.random.stateless_uniform(
        [batch], seed=seeds[0], minval=-shift_frames, maxval=shift_frames + 1, dtype=tf.int32
    )
    source = tf.range(frames)[None, :] - shift[:, None]
    inside = (source >= 0) & (source < frames)
    shifted = tf.gather(x, tf.clip_by_value(source, 0, frames - 1), batch_dims=1)
    x = tf.where(inside[:, :, None], shifted, mean)
    time_mask = _band_mask(
        seeds[1 : 1 + 2 * TIME_MASKS], batch, frames, TIME_MASKS, min(TIME_MASK_MAX, frames // 5)
    )
    freq_mask = _band_mask(seeds[1 + 2 * TIME_MASKS :], batch, bins, FREQ_MASKS, FREQ_MASK_MAX)
    masked = time_mask[:, :, None] | freq_mask[:, None, :]
    return tf.where(masked, mean, x)


def make_dataset(
    x_train: np.ndarray,
    y_train: np.ndarray,
    seed: int,
    batch_size: int,
    first_step: int,
    last_step: int,
    shift_frames: int,
):
    """``(step, x, y)`` for steps ``first_step..last_step``, sampled and augmented ahead.

    The arrays stay numpy (memory-mapped features are read in place): only each batch's rows are
    gathered, on the host, by ``tf.numpy_function``.
    """
    import tensorflow as tf

    examples = len(x_train)
    feature_shape = tuple(int(d) for d in x_train.shape[1:])

    def gather(index):
        return (
            np.asarray(x_train[index], dtype=np.float32),
            np.asarray(y_train[index], dtype=np.int32),
        )

    def one_step(step):
        index = batch_indices(seed, step, examples, batch_size)
        x, y = tf.numpy_function(gather, [index], (tf.float32, tf.int32), stateful=False)
        x = tf.ensure_shape(x, (batch_size, *feature_shape))
        y = tf.ensure_shape(y, (batch_size,))
        return step, augment_batch(x, seed, step, shift_frames), y

    options = tf.data.Options()
    options.deterministic = True
    steps = tf.data.Dataset.range(first_step, last_step + 1)
    return (
        steps.map(one_step, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(options)
    )
