"""SpecAugment-style masking of training batches (``train.spec_augment``)."""

from __future__ import annotations

import numpy as np


def spec_augment(
    features: np.ndarray,
    rng: np.random.Generator,
    time_masks: int = 2,
    time_mask_max: int = 10,
    freq_masks: int = 2,
    freq_mask_max: int = 8,
) -> np.ndarray:
    """SpecAugment-style masking of a numpy batch ``[batch, frames, bins]`` (a new array).

    A pure numpy function (call it on each training batch, e.g. from a tf.numpy_function or
    before feeding). Each example gets ``time_masks`` bands of 0..time_mask_max whole frames and
    ``freq_masks`` bands of 0..freq_mask_max bins, set to that example's mean value (MFCCs are
    not zero-centred, so the mean is the neutral value).
    """
    x = np.array(features, dtype=np.float32, copy=True)
    if x.ndim != 3:
        raise ValueError(f"spec_augment: expected [batch, frames, bins], got shape {x.shape}")
    _, frames, bins = x.shape
    means = x.mean(axis=(1, 2))
    for i in range(len(x)):
        for _ in range(time_masks):
            width = int(rng.integers(0, min(time_mask_max, frames) + 1))
            start = int(rng.integers(0, frames - width + 1))
            x[i, start : start + width, :] = means[i]
        for _ in range(freq_masks):
            width = int(rng.integers(0, min(freq_mask_max, bins) + 1))
            start = int(rng.integers(0, bins - width + 1))
            x[i, :, start : start + width] = means[i]
    return x
