"""Model outputs as class scores: one rule for "is this already a probability"."""

from __future__ import annotations

import numpy as np

# Float error allowed in a row of probabilities that should sum to one.
FLOAT_TOLERANCE = 1e-3


def is_probability(values, quantization_step: float = 0.0) -> bool:
    """True when every row is non-negative and sums to one: within float error, plus half a
    quantization step per label for a quantized (int8) output."""
    values = np.asarray(values, dtype=np.float32)
    if not values.size:
        return False
    tolerance = FLOAT_TOLERANCE + values.shape[-1] * quantization_step / 2
    return bool(values.min() >= 0 and np.allclose(values.sum(axis=-1), 1.0, atol=tolerance))


def as_scores(values, quantization_step: float = 0.0) -> np.ndarray:
    """Probabilities: rows that already are pass through, logits get a softmax."""
    values = np.asarray(values, dtype=np.float32)
    if not values.size or is_probability(values, quantization_step):
        return values
    shifted = values - values.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)
