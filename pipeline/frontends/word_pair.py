"""Both pretrained word embeddings side by side (``features.preprocess: embedding_efficientword``).

One flat vector per clip, ``[1, 864 + 2048]``: the speech embedding's 9 windows of 96 values
(pipeline/frontends/embedding.py) followed by EfficientWord-Net's 2,048 values
(pipeline/frontends/efficientword.py). In bench/kfold.py the two joined beat either alone (see the
README's real-speech table). The EfficientWord-Net ResNet sees a whole 1.5 s window, so nothing
is reused between overlapping streaming windows: streaming runs both models on every window
(slow; see the README).
"""
from __future__ import annotations

import numpy as np

from pipeline.frontends import efficientword, embedding
from pipeline.frontends.base import FrontEnd


class WordPair(FrontEnd):
    name = "embedding_efficientword"
    description = (
        "speech embedding (9x96) and EfficientWord-Net (2048) joined into one flat vector, "
        "see pipeline/frontends/word_pair.py"
    )
    in_graph = False

    def check(self, cfg) -> None:
        embedding.FRONTEND.check(cfg)
        efficientword.FRONTEND.check(cfg)

    def frames_for(self, cfg, samples: int) -> int:
        return 1

    def width(self, cfg) -> int:
        return embedding.windows_for(cfg.desired_samples) * embedding.EMBEDDING_DIM + efficientword.EMBEDDING_DIM

    def compute_numpy(self, audio: np.ndarray, cfg, batch_size: int) -> np.ndarray:
        first = embedding.embed(audio).reshape(len(audio), 1, -1)
        second = efficientword.embed(audio)
        return np.concatenate([first, second], axis=2)


FRONTEND = WordPair()
