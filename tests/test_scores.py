"""pipeline.inference.scores: which model outputs are probabilities and which get a softmax."""

from __future__ import annotations

import numpy as np

from pipeline.inference.scores import as_scores, is_probability

STEP = 1 / 255  # an int8 output's quantization step over 0..1


def int8_rows(rows) -> np.ndarray:
    """Rows of whole quantization steps (``rows`` counts steps), as an int8 output dequantizes."""
    return np.asarray(rows, np.float32) * np.float32(STEP)


def confident_row(top: int) -> list[int]:
    """A confident int8 row of 12 labels summing to exactly 255 steps."""
    row = [5] * 12
    row[top] = 255 - 55
    return row


def test_a_rounded_committee_row_does_not_turn_its_batch_into_a_softmax():
    # A committee's int8 output on a window where every head is unsure: the mean of rounded
    # softmaxes, 7 steps over one in total (half a step per label allowed only 6).
    unsure = [22, 34, 21, 20, 23, 20, 20, 20, 20, 21, 20, 21]
    assert sum(unsure) == 262
    batch = int8_rows([confident_row(2), unsure, confident_row(5)])
    scores = as_scores(batch, STEP)
    np.testing.assert_array_equal(scores, batch)
    assert scores[0, 2] > 0.75 and scores[2, 5] > 0.75


def test_logit_rows_get_a_softmax_and_the_probability_rows_beside_them_do_not():
    probabilities = np.array([0.7, 0.1, 0.1, 0.1], np.float32)
    logits = np.array([2.0, -1.0, 0.5, 3.0], np.float32)
    scores = as_scores(np.stack([probabilities, logits, probabilities]))
    np.testing.assert_array_equal(scores[0], probabilities)
    np.testing.assert_array_equal(scores[2], probabilities)
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(scores[1], expected, rtol=1e-6)
    assert scores[1].argmax() == 3


def test_a_row_of_logits_is_not_a_probability():
    assert not is_probability(np.array([[0.5, 0.2, -0.3, 0.6]], np.float32))
    assert not is_probability(np.array([[0.5, 0.2, 0.3, 0.6]], np.float32))  # sums to 1.6
    assert is_probability(np.array([[0.5, 0.2, 0.3, 0.0]], np.float32))
    assert not is_probability(np.zeros((0, 4), np.float32))
    # A float row is held to float error: the int8 allowance is not given without a step.
    assert not is_probability(int8_rows([[22, 34, 21, 20, 23, 20, 20, 20, 20, 21, 20, 21]]))


def test_quantized_logits_get_no_allowance():
    # An int8 output of logits (a step of 0.25): a row of them is not taken for probabilities
    # because its rounding allowance would be 12 steps.
    logits = np.array([[0.0, 0.0, 0.25, 1.5, 0, 0, 0, 0, 0, 0, 0, 0]], np.float32)
    assert not is_probability(logits, 0.25)
    scores = as_scores(logits, 0.25)
    np.testing.assert_allclose(scores.sum(axis=-1), 1.0, rtol=1e-6)
    assert scores[0, 3] < 0.5  # a softmax of them, not the values themselves
