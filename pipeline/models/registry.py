"""The registered models: ``train.model_architecture`` picks one by name.

To add a model, write one module that defines ``MODEL = ModelSpec(...)`` (see base.py) with its
own ``options`` section, and list it here; params validation (``train.model_architecture`` and
``model.<name>``) and training find it through this table.
"""

from __future__ import annotations

from pipeline.core.errors import ParamError
from pipeline.core.schema import Section
from pipeline.models import (
    conv,
    ds_cnn,
    embedding_conv,
    embedding_head,
    linear_head,
    low_latency_conv,
    low_latency_svdf,
    single_fc,
    tiny_conv,
    tiny_embedding_conv,
    word_pair_conv,
    word_pair_mean,
)
from pipeline.models.base import ModelSpec

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        single_fc.MODEL,
        conv.MODEL,
        low_latency_conv.MODEL,
        low_latency_svdf.MODEL,
        tiny_conv.MODEL,
        tiny_embedding_conv.MODEL,
        ds_cnn.MODEL,
        embedding_head.MODEL,
        embedding_conv.MODEL,
        linear_head.MODEL,
        word_pair_conv.MODEL,
        word_pair_mean.MODEL,
    )
}
# The original's trainable parameter counts (98 x 40 MFCC input, 12 labels), for the tests.
ORIGINAL_PARAMETER_COUNTS = {
    name: spec.original_parameters for name, spec in MODELS.items() if spec.original_parameters
}


def get_model(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ParamError(
            f"unknown model architecture {name!r}; expected one of {', '.join(MODELS)}"
        ) from None


def build_model(
    architecture: str,
    feature_shape,
    num_labels: int,
    dropout: float = 0.5,
    options: Section | None = None,
):
    """Build ``architecture`` for inputs ``[frames, bins]``; the model outputs logits
    (``[batch, heads, labels]`` for a committee, see base.py).

    ``options`` is the model's own hyperparameter section (its defaults when None).
    """
    spec = get_model(architecture)
    feature_shape = tuple(int(d) for d in feature_shape)
    if len(feature_shape) != 2 or min(feature_shape) < 1:
        raise ValueError(
            f"feature_shape must be [frames, bins] with positive sizes, got {feature_shape}"
        )
    if num_labels < 2:
        raise ValueError(f"num_labels must be at least 2, got {num_labels}")
    options = spec.options() if options is None else options
    if not isinstance(options, spec.options):
        raise TypeError(
            f"{architecture} takes {spec.options.__name__}, got {type(options).__name__}"
        )
    import keras

    inputs = keras.Input(shape=feature_shape, name="features")
    logits = spec.build(inputs, num_labels, float(dropout), options)
    if len(logits.shape) not in (2, 3) or logits.shape[-1] != num_labels:
        raise ValueError(
            f"{architecture} gives logits of shape {tuple(logits.shape)}; expected "
            f"[batch, {num_labels}] or [batch, heads, {num_labels}]"
        )
    return keras.Model(inputs, logits, name=architecture)
