"""Model outputs as class scores: one rule for "is this already a probability"."""

from __future__ import annotations

import numpy as np

# Float error allowed in a row of probabilities that should sum to one.
FLOAT_TOLERANCE = 1e-3


# The coarsest step of a quantized output that can hold probabilities (8 bits over 0..1 step
# 1/255 or 1/256); a coarser one holds logits, and gets no allowance.
PROBABILITY_STEP = 1 / 128


def _tolerance(labels: int, quantization_step: float) -> float:
    """How far a row of probabilities may sum from one: float error, plus a whole quantization
    step per label for a quantized (int8) output. A committee's int8 output is the mean of its
    heads' softmaxes, each rounded to a step and the mean rounded again, so its labels may each
    be up to a step off (near-uniform rows, where every head is unsure, sum 3-7 steps from one
    over 12 labels), not only the half step of one rounding."""
    if quantization_step > PROBABILITY_STEP:
        return FLOAT_TOLERANCE
    return FLOAT_TOLERANCE + labels * quantization_step


def probability_rows(values, quantization_step: float = 0.0) -> np.ndarray:
    """Per row of ``values [..., labels]``: whether it is non-negative and sums to one (within
    ``_tolerance``)."""
    values = np.asarray(values, dtype=np.float32)
    tolerance = _tolerance(values.shape[-1], quantization_step)
    return (values.min(axis=-1) >= 0) & (np.abs(values.sum(axis=-1) - 1.0) <= tolerance)


def is_probability(values, quantization_step: float = 0.0) -> bool:
    """True when every row is a probability (``probability_rows``): whether a model's outputs
    need a softmax, judged on a few of them."""
    values = np.asarray(values, dtype=np.float32)
    return bool(values.size and probability_rows(values, quantization_step).all())


def as_scores(values, quantization_step: float = 0.0) -> np.ndarray:
    """Probabilities: rows that already are pass through, rows of logits get a softmax. Decided
    row by row, so that one row off by its rounding cannot turn a batch of probabilities into
    the softmax of probabilities (nearly uniform: every window of the batch missed)."""
    values = np.asarray(values, dtype=np.float32)
    if not values.size:
        return values
    logits = ~probability_rows(values, quantization_step)
    if not logits.any():
        return values
    out = values.copy()
    rows = values[logits]
    exp = np.exp(rows - rows.max(axis=-1, keepdims=True))
    out[logits] = exp / exp.sum(axis=-1, keepdims=True)
    return out
