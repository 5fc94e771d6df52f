"""``average``: the power spectrogram's frequency bins average-pooled into buckets of
``floor(fft_bins / feature_bin_count)`` bins ("SAME" padding), so the width is
``ceil(fft_bins / that)`` -- 43, not 40, with the defaults, exactly as the original."""

from __future__ import annotations

import math

from pipeline.core.errors import ParamError
from pipeline.frontends.base import FrontEnd, next_power_of_two, power_spectrogram


def fft_bin_count(cfg) -> int:
    return 1 + next_power_of_two(cfg.window_size_samples) // 2


def pool_width(cfg) -> int:
    """Spectrogram bins averaged into one feature."""
    return fft_bin_count(cfg) // cfg.feature_bin_count


class Average(FrontEnd):
    name = "average"
    description = "power AudioSpectrogram average-pooled over frequency bins (SAME padding)"
    frame_reuse = True

    def check(self, cfg) -> None:
        if pool_width(cfg) < 1:
            raise ParamError(
                f"params: features.feature_bin_count = {cfg.feature_bin_count} exceeds the "
                f"{fft_bin_count(cfg)} spectrogram bins; 'average' needs at most that many"
            )

    def frame_width(self, cfg) -> int:
        return math.ceil(fft_bin_count(cfg) / pool_width(cfg))

    def compute(self, audio, cfg):
        import tensorflow as tf

        spectrogram = power_spectrogram(tf.convert_to_tensor(audio, tf.float32), cfg)
        width = pool_width(cfg)
        pooled = tf.nn.pool(
            input=tf.expand_dims(spectrogram, -1),
            window_shape=[1, width],
            strides=[1, width],
            pooling_type="AVG",
            padding="SAME",
        )
        return tf.squeeze(pooled, -1)


FRONTEND = Average()
