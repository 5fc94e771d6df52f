"""``low_latency_svdf``: a rank-2 SVDF layer of 1280 units, then two dense layers."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.schema import Section, integer, param
from pipeline.models.base import ModelSpec, dense


@dataclass(frozen=True)
class SvdfOptions(Section):
    section = "model.low_latency_svdf"

    units: int = param(1280, integer(1, 100000))
    rank: int = param(2, integer(1, 64))


def build(x, num_labels, dropout, options: SvdfOptions):
    from keras import layers

    from pipeline.models.layers import SVDF

    x = SVDF(options.units, options.rank, name="svdf")(x)
    x = layers.ReLU(name="first_relu")(x)
    x = layers.Dropout(dropout, name="first_dropout")(x)
    x = dense(256, "first_fc")(x)
    x = layers.Dropout(dropout, name="second_dropout")(x)
    x = dense(256, "second_fc")(x)
    x = layers.Dropout(dropout, name="final_dropout")(x)
    return dense(num_labels, "final_fc")(x)


MODEL = ModelSpec(
    "low_latency_svdf", build, "rank-2 SVDF, 1280 units (whole-clip mode)", SvdfOptions,
    original_parameters=751_372,
)
