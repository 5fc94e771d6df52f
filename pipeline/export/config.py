"""The ``export`` section: how the exported model listens, beyond the trained weights.

``views``: the vocal-tract views inference averages the model's scores over. A view ``f`` is the
input's log-mel computed as if its speaker's voice were ``f`` times higher (formants and pitch
together, timing unchanged: ``pipeline.frontends.embedding.view_matrix2``); the model's softmax of
each view is averaged. The model is trained on view 1.0 alone; the views only widen what it hears
at inference, which carried the synthetic voices over to real speakers better than any change
to their training (docs/benchmarks.md, "Vocal-tract views"). Each view costs one more pass of
the front end's network, so three views run at a third of the speed. Only front ends with
``supports_views`` (the speech embedding) compute them; [1.0] is the model as trained.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.errors import ParamError
from pipeline.core.schema import Section, list_of, number, param
from pipeline.frontends.base import VIEW_HIGH, VIEW_LOW, check_views


@dataclass(frozen=True)
class ExportConfig(Section):
    section = "export"

    views: list = param([1.0], list_of(number(VIEW_LOW, VIEW_HIGH)))

    def __post_init__(self):
        try:
            check_views(self.views, "params: export.views")
        except ValueError as exc:
            raise ParamError(str(exc)) from None
