"""Streaming inference: one new feature frame per call, the past carried in explicit states.

A model module that can stream gives its ``ModelSpec`` a ``stream`` function: ``(trained logits
model, options) -> StreamingModel``, built from the trained layers and their weights (nothing is
retrained). ``stream`` raises :class:`NotStreamable` when this model's configuration cannot
stream exactly (the export then notes why and writes no streaming model). How each model keeps
its past:

- ``low_latency_svdf``: the SVDF's runtime memory, the feature-filter activations of the last
  ``frames`` frames; each call computes the newest frame's activations only (the original's
  "optimized execution at test time").
- ``ds_cnn`` with valid padding (no padding; the window's scores depend on its own frames
  only): every layer runs at the full frame rate, one output per input frame; a convolution
  after stride-``s`` blocks keeps the last ``(kernel - 1) * s`` of its inputs and takes every
  ``s``-th (dilation), as the window model's strided outputs are spaced, and the average pooling
  keeps the last block's outputs the same way. Every frame's scores are then the window model's
  for the window that ends at that frame, at any phase against the total stride; no phase.
- ``ds_cnn`` with causal padding: a ring buffer of the last ``kernel - 1`` inputs of every
  convolution, a ring buffer of the last block's outputs for the average pooling, and a phase
  counter: a stride-2 block emits on every second frame of its input (``phase % rate == 0``)
  and the layers after it update their buffers only then, so the states after a clip's last
  frame are exactly what the whole-clip model computed on that clip (from zero states only: on
  a continuous recording the stream sees the real past where each window saw zero padding).

A streaming model's call takes ``[frame [batch, bins], *states]`` and returns
``[scores [batch, labels], *new states]`` in the order of ``state_shapes``; all states start at
zero (the whole-clip model's zero padding before the clip).
"""

from __future__ import annotations

import keras
import numpy as np

from pipeline.core.errors import KwsError


class NotStreamable(KwsError):
    """This trained model (architecture or options) has no exact streaming form."""


class StreamingModel(keras.Model):
    """Base class: subclasses set ``state_shapes`` and implement ``step``."""

    def __init__(
        self,
        source: keras.Model,
        bins: int,
        frames: int,
        state_shapes: dict[str, tuple[int, ...]],
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.source = source  # the trained model whose layers (and weights) step uses
        self.bins = int(bins)
        self.frames = int(frames)  # frames of the whole-clip model's window
        self.state_shapes = {
            name: tuple(int(d) for d in shape) for name, shape in state_shapes.items()
        }

    def initial_states(self, batch: int = 1) -> list[np.ndarray]:
        return [np.zeros((batch, *shape), np.float32) for shape in self.state_shapes.values()]

    def step(self, frame, states: list):  # pragma: no cover - abstract
        """``(logits [batch, labels], new states)`` after one frame [batch, bins]."""
        raise NotImplementedError

    def call(self, inputs):
        frame, *states = inputs
        logits, new_states = self.step(frame, list(states))
        return [keras.ops.softmax(logits, axis=-1), *new_states]

    def run_clip(self, features: np.ndarray) -> np.ndarray:
        """Scores after each frame of one clip's features [frames, bins], from zero states
        (eager; for checks: [frames, labels])."""
        states = self.initial_states()
        out = []
        for frame in np.asarray(features, np.float32):
            scores, *states = self([frame[None], *states])
            out.append(np.asarray(scores)[0])
        return np.stack(out)


def append_frame(buffer, item):
    """``buffer`` [batch, n, ch] with ``item`` [batch, 1, ch] appended: [batch, n + 1, ch]."""
    return keras.ops.concatenate([buffer, item], axis=1)


def keep_if(condition, new, old):
    """``new`` where ``condition`` (a [batch] or scalar bool) holds, else ``old``."""
    ops = keras.ops
    return ops.where(ops.reshape(condition, (-1,) + (1,) * (len(new.shape) - 1)), new, old)


def logits_model(trained: keras.Model, architecture: str) -> keras.Model:
    """The logits model inside the train stage's ``with_softmax`` wrapper (or ``trained``
    itself)."""
    for layer in trained.layers:
        if isinstance(layer, keras.Model) and layer.name == architecture:
            return layer
    if trained.name == architecture:
        return trained
    raise NotStreamable(f"the trained model holds no {architecture!r} logits model")
