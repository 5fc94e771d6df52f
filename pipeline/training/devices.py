"""Where training runs: the CPU, one GPU, or several GPUs under ``tf.distribute.MirroredStrategy``.

No parameter chooses it: TensorFlow places the ops on a GPU when it sees one (install a GPU build
of TensorFlow, see docs/training.md), and several GPUs are used together, each replica taking an
equal slice of every batch. On a machine without a GPU nothing changes (no strategy at all), so the
CPU path and its byte-for-byte determinism are exactly those of a plain TensorFlow program.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """What :func:`choose_placement` decided: ``kind`` is ``cpu``, ``gpu`` or ``mirrored``."""

    kind: str
    devices: tuple[str, ...]

    @property
    def on_gpu(self) -> bool:
        return any("GPU" in name.upper() for name in self.devices)

    @property
    def replicas(self) -> int:
        return len(self.devices) if self.kind == "mirrored" else 1

    def describe(self) -> str:
        if self.kind == "mirrored":
            return f"MirroredStrategy over {len(self.devices)} devices ({', '.join(self.devices)})"
        return f"one {self.kind.upper()} ({self.devices[0]})" if self.devices else "the CPU"


def choose_placement(gpus: list[str]) -> Placement:
    """The placement for the logical GPU names TensorFlow lists
    (``tf.config.list_logical_devices``).

    No GPU: the CPU; one GPU: TensorFlow's default placement on it; several: all of them mirrored.
    """
    gpus = tuple(gpus)
    if not gpus:
        return Placement("cpu", ())
    if len(gpus) == 1:
        return Placement("gpu", gpus)
    return Placement("mirrored", gpus)


def detect_placement() -> Placement:
    """:func:`choose_placement` for the GPUs this process's TensorFlow sees."""
    import tensorflow as tf

    return choose_placement([d.name for d in tf.config.list_logical_devices("GPU")])


def make_strategy(placement: Placement):
    """A ``MirroredStrategy`` for a ``mirrored`` placement, else None (TensorFlow's default)."""
    if placement.kind != "mirrored":
        return None
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(devices=list(placement.devices))
