"""``embedding_head``: a small trainable head on frozen speech embeddings ([windows, 96] per
clip), in the spirit of openWakeWord's classifier: flatten, two dense layers with layer norm,
then logits."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.schema import Section, integer, param
from pipeline.models.base import ModelSpec


@dataclass(frozen=True)
class HeadOptions(Section):
    section = "model.embedding_head"

    units: int = param(128, integer(1, 100000))


def build(x, num_labels, dropout, options: HeadOptions):
    from keras import layers

    x = layers.Flatten(name="flatten")(x)
    for i in (1, 2):
        x = layers.Dense(options.units, name=f"fc{i}")(x)
        x = layers.LayerNormalization(name=f"fc{i}_norm")(x)
        x = layers.ReLU(name=f"fc{i}_relu")(x)
        x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    return layers.Dense(num_labels, name="final_fc")(x)


MODEL = ModelSpec("embedding_head", build, "small head on the frozen speech embedding", HeadOptions)
