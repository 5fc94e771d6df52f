"""``mfcc``: AudioSpectrogram (power) -> Mfcc (20-4000 Hz, 40 filterbank channels), as the
original input_data.py; identical to the ``Mfcc`` tensor of the original pretrained graph."""

from __future__ import annotations

from pipeline.core.errors import ParamError
from pipeline.frontends.base import FrontEnd, power_spectrogram

LOWER_HZ = 20.0
UPPER_HZ = 4000.0
FILTERBANK_CHANNELS = 40


class Mfcc(FrontEnd):
    name = "mfcc"
    description = (
        "tf.raw_ops.AudioSpectrogram(window_size_samples, frame_stride_samples, "
        "magnitude_squared=True) -> tf.raw_ops.Mfcc(20-4000 Hz, 40 filterbank channels, "
        "dct_coefficient_count=feature_bin_count)"
    )
    frame_reuse = True

    def check(self, cfg) -> None:
        # The DCT keeps at most as many coefficients as the filterbank has channels (the op
        # fails to initialize beyond), and the filterbank reaches UPPER_HZ: below twice that
        # sample rate the op returns all-zero features.
        if cfg.feature_bin_count > FILTERBANK_CHANNELS:
            raise ParamError(
                f"params: features.feature_bin_count = {cfg.feature_bin_count} is out of range for "
                f"'mfcc': at most {FILTERBANK_CHANNELS} (its filterbank channels)"
            )
        if cfg.sample_rate < 2 * UPPER_HZ:
            raise ParamError(
                f"params: features.sample_rate = {cfg.sample_rate} is too low for 'mfcc': at least "
                f"{2 * UPPER_HZ:g} (its filterbank reaches {UPPER_HZ:g} Hz)"
            )

    def compute(self, audio, cfg):
        import tensorflow as tf

        return tf.raw_ops.Mfcc(
            spectrogram=power_spectrogram(tf.convert_to_tensor(audio, tf.float32), cfg),
            sample_rate=tf.constant(cfg.sample_rate, tf.int32),
            upper_frequency_limit=UPPER_HZ,
            lower_frequency_limit=LOWER_HZ,
            filterbank_channel_count=FILTERBANK_CHANNELS,
            dct_coefficient_count=cfg.feature_bin_count,
        )


FRONTEND = Mfcc()
