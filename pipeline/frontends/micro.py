"""``micro``: the TFLite Micro audio front end (125-7500 Hz, PCAN, log), output * 10/256, as the
original's micro mode. It is stateful (noise reduction adapts over time), so it is computed per
clip and its frames cannot be reused across overlapping windows."""

from __future__ import annotations

from pipeline.core.errors import ParamError
from pipeline.frontends.base import FrontEnd

LOWER_HZ = 125.0
UPPER_HZ = 7500.0
OUTPUT_SCALE = 10.0 / 256.0


def _one_clip(clip, cfg):
    import tensorflow as tf
    from tensorflow.lite.experimental.microfrontend.python.ops import (
        audio_microfrontend_op,
    )

    # The original casts audio * 32768 straight to int16, which wraps a full-scale +1.0 sample to
    # -32768; clipping to the int16 range first fixes that and changes nothing else.
    int16_input = tf.cast(tf.clip_by_value(clip * 32768.0, -32768.0, 32767.0), tf.int16)
    out = audio_microfrontend_op.audio_microfrontend(
        int16_input,
        sample_rate=cfg.sample_rate,
        window_size=int(cfg.samples_to_ms(cfg.window_size_samples)),
        window_step=int(cfg.samples_to_ms(cfg.window_stride_samples)),
        num_channels=cfg.feature_bin_count,
        upper_band_limit=UPPER_HZ,
        lower_band_limit=LOWER_HZ,
        enable_pcan=True,
        min_signal_remaining=0.05,
        out_scale=1,
        out_type=tf.float32,
    )
    if clip.shape[0] is None:
        # The op's shape function says 0 frames when the length is unknown; relax it to None so
        # that map_fn does not reject the real frames at run time.
        out = tf.compat.v1.placeholder_with_default(out, [None, cfg.feature_bin_count])
    return out * OUTPUT_SCALE


class Micro(FrontEnd):
    name = "micro"
    description = "TFLite Micro audio front end (125-7500 Hz, PCAN, log), times 10/256"

    def check(self, cfg) -> None:
        # The op cannot build its filterbank (up to UPPER_HZ) at or below twice that rate, and
        # a stride longer than the window corrupts its memory (the process dies).
        if cfg.sample_rate <= 2 * UPPER_HZ:
            raise ParamError(
                f"params: features.sample_rate = {cfg.sample_rate} is too low for 'micro': above "
                f"{2 * UPPER_HZ:g} needed (its filterbank reaches {UPPER_HZ:g} Hz)"
            )
        if cfg.window_stride_samples > cfg.window_size_samples:
            raise ParamError(
                f"params: features.window_stride_ms = {cfg.window_stride_ms} exceeds "
                f"window_size_ms = {cfg.window_size_ms}; 'micro' needs frames that touch or overlap"
            )
        for key in ("window_size_ms", "window_stride_ms"):
            ms = cfg.samples_to_ms(getattr(cfg, key.replace("_ms", "_samples")))
            if ms != int(ms):
                raise ParamError(
                    f"params: features.{key} must be a whole number of milliseconds for "
                    f"'micro' (the TFLite Micro front end takes integer ms), got {ms}"
                )

    def compute(self, audio, cfg):
        import tensorflow as tf

        audio = tf.convert_to_tensor(audio, tf.float32)
        frames = self.frames_for(cfg, int(audio.shape[-1])) if audio.shape[-1] is not None else None
        return tf.map_fn(
            lambda clip: _one_clip(clip, cfg),
            audio,
            fn_output_signature=tf.TensorSpec([frames, cfg.feature_bin_count], tf.float32),
        )


FRONTEND = Micro()
