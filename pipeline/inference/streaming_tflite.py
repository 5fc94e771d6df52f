"""``model_streaming.tflite``: one feature frame per call, the model's state carried explicitly.

The model's ``serving_default`` signature takes ``frame`` [1, bins] and one float32 tensor per
state (by name), and returns ``output_0``, the scores [1, labels], and ``output_1``.. the states
updated, in the order ``frontend.json`` lists them (``streaming.inputs`` after the frame; its
``streaming.states`` gives their shapes). Feed each call's output
states to the next call; zeros start a stream.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.errors import StageError, first_line
from pipeline.core.tf import tflite_interpreter

FRAME, SCORES = "frame", "output_0"


class StreamingTFLite:
    """Runs a streaming TFLite model frame by frame (``step``), keeping its states."""

    def __init__(
        self,
        state_names: list[str],
        path: Path | None = None,
        content: bytes | None = None,
        num_threads: int = 1,
    ):
        """``state_names``: the states in output order (frontend.json's
        ``streaming.inputs[1:]``)."""
        name = str(path) if path is not None else "streaming model"
        try:
            self.interpreter = tflite_interpreter(
                model_path=str(path) if path is not None else None,
                model_content=content,
                num_threads=num_threads,
            )
            runner = self.interpreter.get_signature_runner()
            inputs, outputs = runner.get_input_details(), runner.get_output_details()
            del runner
            self.interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise StageError(f"{name}: not a streaming TFLite model ({first_line(exc)})") from None
        if FRAME not in inputs or SCORES not in outputs:
            raise StageError(
                f"{name}: not a streaming TFLite model (its signature has inputs "
                f"{sorted(inputs)} and outputs {sorted(outputs)}; expected "
                f"'{FRAME}' in and '{SCORES}' out)"
            )
        self.state_names = list(state_names)
        if (
            sorted(self.state_names) != sorted(key for key in inputs if key != FRAME)
            or len(outputs) != len(self.state_names) + 1
        ):
            raise StageError(
                f"{name}: its signature has inputs {sorted(inputs)} and {len(outputs)} "
                f"outputs; expected '{FRAME}' and the states {self.state_names} in, the "
                "scores and the same states out"
            )
        self._frame = inputs[FRAME]["index"]
        self._scores = outputs[SCORES]["index"]
        self.bins = int(inputs[FRAME]["shape"][-1])
        self.num_labels = int(outputs[SCORES]["shape"][-1])
        self._state_in = [inputs[key]["index"] for key in self.state_names]
        self._state_out = [
            outputs[f"output_{k}"]["index"] for k in range(1, len(self.state_names) + 1)
        ]
        self.state_shapes = {
            key: tuple(int(d) for d in inputs[key]["shape"]) for key in self.state_names
        }
        for k, key in enumerate(self.state_names, start=1):
            out_shape = tuple(int(d) for d in outputs[f"output_{k}"]["shape"])
            if out_shape != self.state_shapes[key]:
                raise StageError(
                    f"{name}: output_{k} has shape {list(out_shape)} but state {key!r} "
                    f"has {list(self.state_shapes[key])}: the states are not in output order"
                )
        self.reset()

    def reset(self) -> None:
        """Zero states: the start of a stream."""
        self.states = [np.zeros(shape, np.float32) for shape in self.state_shapes.values()]

    def step(self, frame: np.ndarray) -> np.ndarray:
        """Scores [labels] after one more feature frame [bins]."""
        set_tensor, interpreter = self.interpreter.set_tensor, self.interpreter
        set_tensor(self._frame, np.asarray(frame, np.float32).reshape(1, self.bins))
        for index, state in zip(self._state_in, self.states):
            set_tensor(index, state)
        interpreter.invoke()
        self.states = [interpreter.get_tensor(index) for index in self._state_out]
        return interpreter.get_tensor(self._scores)[0]

    def run(self, features: np.ndarray, progress=None) -> np.ndarray:
        """Scores after each of ``features`` [frames, bins], continuing the current states."""
        features = np.asarray(features, np.float32)
        out = np.empty((len(features), self.num_labels), np.float32)
        for t, frame in enumerate(features):
            out[t] = self.step(frame)
            if progress is not None:
                progress.update(1)
        return out
