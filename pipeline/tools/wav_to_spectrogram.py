"""Draw a WAV file's spectrogram as a PNG, optionally with the features a model sees.

    python -m pipeline.tools.wav_to_spectrogram --wav clip.wav --out clip.png
    python -m pipeline.tools.wav_to_spectrogram --wav clip.wav --out clip.png --features \
        --model-dir models/export

The top panel is the power spectrogram in dB (time in s left to right, frequency in Hz), computed
with the model's window and stride. With ``--features`` a second panel shows the features of the
clip padded/truncated to the model's length: from the model's own front end when given
(``--model-dir``: any format load_model reads), otherwise from params.yaml's features section.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from pipeline.cli import parse_args, run_main
from pipeline.core.audio import fit_to_length, read_wav
from pipeline.core.errors import StageError
from pipeline.core.fs import atomic_write_bytes, check_output_file

DESCRIPTION = "Draw a WAV file's spectrogram as a PNG, optionally with the model's features."


def power_spectrogram(audio: np.ndarray, window: int, stride: int) -> np.ndarray:
    """[frames, fft_bins] power, Hann window, FFT length the next power of two (as the op)."""
    fft_length = 1 << (window - 1).bit_length()
    if len(audio) < window:
        audio = np.pad(audio, (0, window - len(audio)))
    frames = 1 + (len(audio) - window) // stride
    index = np.arange(window)[None, :] + stride * np.arange(frames)[:, None]
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window) / window)
    spectrum = np.fft.rfft(audio[index] * hann, n=fft_length, axis=1)
    return (np.abs(spectrum) ** 2).astype(np.float32)


def _front_end(model_path, labels_path, params_path):
    """(sample_rate, window, stride, desired_samples, feature function or None, feature name)."""
    if model_path:
        from pipeline.inference import load_model

        model = load_model(model_path, labels_path)
        if model.supports_frames:
            fn = lambda a: model.frame_features(a)  # noqa: E731
        elif hasattr(model, "features"):
            fn = lambda a: model.features(a[None])[0]  # noqa: E731
        else:
            fn = None
        cfg = getattr(model, "cfg", None)
        window = (
            int(cfg.window_size_samples)
            if cfg
            else int(
                getattr(model, "spectrogram_attrs", {}).get("window_size", model.sample_rate * 0.03)
            )
        )
        stride = int(
            model.frame_stride_samples or (cfg.window_stride_samples if cfg else window // 3)
        )
        name = cfg.preprocess if cfg else "mfcc (model front end)"
        return model.sample_rate, window, stride, model.desired_samples, fn, name
    from pipeline.core.params import load_params
    from pipeline.frontends import FeatureConfig, features_numpy

    cfg = load_params(params_path, FeatureConfig)
    return (
        cfg.sample_rate,
        cfg.window_size_samples,
        cfg.window_stride_samples,
        cfg.desired_samples,
        lambda a: features_numpy(a[None], cfg)[0],
        cfg.preprocess,
    )


def render(
    wav_path,
    out_path,
    features: bool = False,
    model_path=None,
    labels_path=None,
    params_path="params.yaml",
    width_px: int = 1000,
    height_px: int | None = None,
    dpi: int = 100,
) -> tuple[int, int]:
    """Write the PNG; return its (width, height) in pixels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rate, window, stride, desired, feature_fn, name = _front_end(
        model_path, labels_path, params_path
    )
    audio = read_wav(wav_path, rate)
    if features and feature_fn is None:
        raise StageError(f"{model_path}: this model does not expose its features")
    height_px = height_px or (700 if features else 400)
    spec_db = 10 * np.log10(power_spectrogram(audio, window, stride) + 1e-10)
    fft_length = 1 << (window - 1).bit_length()
    panels = 2 if features else 1
    fig, axes = plt.subplots(
        panels, 1, figsize=(width_px / dpi, height_px / dpi), dpi=dpi, squeeze=False
    )
    ax = axes[0, 0]
    extent = [0, (len(spec_db) * stride + window - stride) / rate, 0, rate / 2]
    image = ax.imshow(spec_db.T, origin="lower", aspect="auto", extent=extent, cmap="magma")
    ax.set(
        title=f"{Path(wav_path).name}: power spectrogram (window {window}, stride {stride}, "
        f"FFT {fft_length} samples)",
        xlabel="time (s)",
        ylabel="frequency (Hz)",
    )
    fig.colorbar(image, ax=ax, label="power (dB)")
    if features:
        values = np.asarray(feature_fn(fit_to_length(audio, desired).astype(np.float32)))
        ax = axes[1, 0]
        extent = [0, (len(values) * stride + window - stride) / rate, 0, values.shape[1]]
        image = ax.imshow(values.T, origin="lower", aspect="auto", extent=extent, cmap="viridis")
        ax.set(
            title=f"features the model sees: {name}, {values.shape[0]} x {values.shape[1]}",
            xlabel="time (s)",
            ylabel="feature bin",
        )
        fig.colorbar(image, ax=ax, label="value")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(out_path, buffer.getvalue())
    return width_px, height_px


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wav", required=True, help="the WAV file to draw")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--features", action="store_true", help="add a panel with the features")
    parser.add_argument(
        "--model-dir",
        "--model",
        dest="model",
        default=None,
        help="take window, stride and features from this model (any format)",
    )
    parser.add_argument("--labels", default=None, help="labels file (default: beside the model)")
    parser.add_argument(
        "--params",
        default="params.yaml",
        help="features from this params file when no --model-dir is given",
    )
    parser.add_argument("--width", type=int, default=1000, help="image width in pixels")
    parser.add_argument(
        "--height",
        type=int,
        default=None,
        help="image height in pixels (default: 400, or 700 with features)",
    )


def main(argv=None) -> int:
    args = parse_args(__name__, argv)
    if args.width < 100 or (args.height is not None and args.height < 100):
        raise StageError("--width and --height must be at least 100 pixels")
    check_output_file(args.out)
    size = render(
        args.wav,
        args.out,
        args.features,
        args.model,
        args.labels,
        args.params,
        args.width,
        args.height,
    )
    print(f"wrote {args.out} ({size[0]} x {size[1]} px)")
    return 0


if __name__ == "__main__":
    run_main(main)
