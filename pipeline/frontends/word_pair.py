"""Both pretrained word embeddings side by side (``features.preprocess: embedding_efficientword``).

One flat vector per clip, ``[1, 864 + 2048]``: the speech embedding's 9 windows of 96 values
(pipeline/frontends/embedding.py) followed by EfficientWord-Net's 2,048 values
(pipeline/frontends/efficientword.py) times ``EFFICIENTWORD_GAIN``. In the k-fold bench the two
joined beat either alone (docs/experiments/real-speech-kfold.md). The EfficientWord-Net ResNet
sees a whole 1.5 s window, so nothing is reused between overlapping streaming windows: streaming
runs both models on every window (slow; see docs/streaming.md, the cascade).

Why the gain: an int8 model quantizes its input tensor with one scale. The speech embedding's
values span about +-100, EfficientWord-Net's unit-length vector about +-0.34, so without it
every EfficientWord-Net value rounds to zero in int8 and the pair's int8 exports were far below
their float accuracy. Times 256 (a power of two: exact in float32) it spans about +-87 and both
parts share the input's int8 steps: int8 equals float with either model (figures:
docs/experiments/real-speech-streams.md, "After the pair's int8 mend"). The models standardize each
feature, so the gain does not change what they can learn.
"""

from __future__ import annotations

import numpy as np

from pipeline.frontends import efficientword, embedding
from pipeline.frontends.base import FrontEnd

EFFICIENTWORD_GAIN = np.float32(256.0)


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

    def frame_width(self, cfg) -> int:
        return (
            embedding.windows_for(cfg.desired_samples) * embedding.EMBEDDING_DIM
            + efficientword.EMBEDDING_DIM
        )

    def compute_numpy(self, audio: np.ndarray, cfg, batch_size: int) -> np.ndarray:
        first = embedding.embed(audio).reshape(len(audio), 1, -1)
        second = efficientword.embed(audio) * EFFICIENTWORD_GAIN
        return np.concatenate([first, second], axis=2)


FRONTEND = WordPair()
