"""Mixed precision (``train.mixed_precision``, opt-in).

On a GPU the Keras policy ``mixed_float16`` (float16 compute, float32 variables, dynamic loss
scaling); on a CPU ``mixed_bfloat16`` (bfloat16 has float32's range, so no loss scaling, and
oneDNN runs it natively on CPUs with AVX-512 BF16 / AMX; float16 on a CPU is emulated and slow).
The variables stay float32 either way, and the model that training writes is rebuilt under the
float32 policy with the trained weights, so exports and inference are unchanged by the option.
"""

from __future__ import annotations

import contextlib


def policy_name(enabled: bool, on_gpu: bool) -> str:
    if not enabled:
        return "float32"
    return "mixed_float16" if on_gpu else "mixed_bfloat16"


@contextlib.contextmanager
def dtype_policy(name: str):
    """Build layers under the Keras dtype policy ``name``; restore the previous one after."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def wrap_optimizer(optimizer, name: str):
    """Dynamic loss scaling for float16 (the only policy that needs it)."""
    if name != "mixed_float16":
        return optimizer
    import keras

    return keras.optimizers.LossScaleOptimizer(optimizer)


def float32_copy(model, build):
    """``build()`` (a float32 model of the same architecture) holding ``model``'s weights."""
    with dtype_policy("float32"):
        copy = build()
    copy.set_weights(model.get_weights())
    return copy
