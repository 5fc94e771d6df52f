"""The ``model`` section: each registered model's own hyperparameters, under its name.

params.yaml holds ``model.<architecture>`` for every model (``{}`` for the original topologies,
which have none), so ``dvc exp run -S model.ds_cnn.channels=96`` works like any other key; the
train stage depends only on the section of the architecture it trains
(``model.${train.model_architecture}`` in dvc.yaml).
"""

from __future__ import annotations

import dataclasses

from pipeline.core.schema import Section, subsection
from pipeline.models.registry import MODELS, get_model


def _options_for(self, architecture: str) -> Section:
    """The hyperparameters of ``architecture``."""
    get_model(architecture)
    return getattr(self, architecture)


ModelConfig = dataclasses.make_dataclass(
    "ModelConfig",
    [(name, spec.options, subsection(spec.options)) for name, spec in MODELS.items()],
    bases=(Section,),
    frozen=True,
    namespace={
        "section": "model",
        "options_for": _options_for,
        "__doc__": "The model section: one options section per registered model.",
    },
)
