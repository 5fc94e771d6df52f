"""The registered front ends: ``features.preprocess`` picks one by name.

To add a front end, write one module with a ``FrontEnd`` subclass (see base.py) and list its
``FRONTEND`` here; params validation, featurize, export and inference find it through this
table.
"""

from __future__ import annotations

from pipeline.core.errors import ParamError
from pipeline.frontends import average, efficientword, embedding, mfcc, micro, word_pair
from pipeline.frontends.base import FrontEnd

FRONTENDS: dict[str, FrontEnd] = {
    fe.name: fe
    for fe in (
        mfcc.FRONTEND,
        average.FRONTEND,
        micro.FRONTEND,
        embedding.FRONTEND,
        embedding.FRONTEND_INT8,
        efficientword.FRONTEND,
        word_pair.FRONTEND,
    )
}


def get_frontend(name: str) -> FrontEnd:
    try:
        return FRONTENDS[name]
    except KeyError:
        raise ParamError(
            f"unknown front end {name!r}; expected one of {', '.join(FRONTENDS)}"
        ) from None
