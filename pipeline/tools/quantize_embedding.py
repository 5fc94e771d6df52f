"""Regenerate the int8 speech-embedding model (``features.preprocess: embedding_int8``).

    python -m pipeline.tools.quantize_embedding [--data ../shared/data/speech_commands_mini]
        [--out pipeline/frontends/assets/embedding_model_int8.onnx] [--check]

A dev tool: its output is committed (pipeline/frontends/assets/, with its licence notice), so the
pipeline runs that model on onnxruntime alone; this tool edits the float model with ``onnx``. Steps:

1. the openwakeword 0.5.1 wheel's ``embedding_model.onnx`` (the float model, 76 mel frames -> 96
   values) with its time axis made free: the input Reshape keeps the frame count (``[0, 1, -1,
   32]``) and the output Reshape becomes a Transpose to ``[clips, windows, 1, 96]``, so one call
   over F frames returns the 1 + (F - 76) // 8 windows every 8 frames, in order (the model is
   convolutional in time, as embedding.py explains for the TFLite twin);
2. ``quant_pre_process`` (shape inference), then static quantization by onnxruntime (QDQ format,
   activations uint8 asymmetric, weights int8 per output channel), calibrated on REAL speech: the
   scaled mel (as featurize computes it, each clip padded and clamped alone) of every
   ``CALIBRATION_STEP``-th clip of ``--data`` in name order, ``[clips, 140, 32, 1]``. Each
   activation's calibrated range (min, max) is widened outward to ``RANGE_DIGITS`` significant
   digits before it sets the scale, so the bytes do not depend on the last bits of this CPU's
   float kernels (the calibration runs the float model on onnxruntime): the same data gives the
   same file on any machine.

Static, never dynamic quantization: dynamic quantization picks activation scales per call, so a
clip's features would depend on the other clips of its batch. ``--check`` regenerates into a
temporary file and fails unless it equals ``--out`` byte for byte.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np

from pipeline.cli import parse_args, run_main
from pipeline.core.errors import StageError
from pipeline.core.fs import atomic_write_bytes

DESCRIPTION = "Regenerate the int8 speech-embedding model (a dev tool)."

DEFAULT_DATA = Path("../shared/data/speech_commands_mini")
# Every 8th clip in name order (350 of the 2,804 shared clips, all words and many speakers).
CALIBRATION_STEP = 8
CALIBRATION_BATCH = 50
RANGE_DIGITS = 3
INPUT_NAME = "input_1"


def asset_path() -> Path:
    from pipeline.frontends import embedding

    return embedding.int8_model_path(must_exist=False)


def float_model():
    """The wheel's float ONNX model with a free time axis (see the module docstring, step 1)."""
    import onnx
    from onnx import helper, numpy_helper

    from pipeline.frontends import embedding

    model = onnx.load(str(embedding.models_dir() / "embedding_model.onnx"))
    graph = model.graph
    if len(graph.input) != 1 or graph.input[0].name != INPUT_NAME:
        raise StageError("embedding_model.onnx: unexpected inputs (expected one named input_1)")
    reshapes = [n for n in graph.node if n.op_type == "Reshape"]
    if (
        len(reshapes) != 2
        or reshapes[0].input[0] != INPUT_NAME
        or reshapes[1].output[0] != graph.output[0].name
    ):
        raise StageError(
            "embedding_model.onnx: unexpected graph (expected an input and an output Reshape)"
        )
    first, last = reshapes
    for init in graph.initializer:
        if init.name == first.input[1]:
            init.CopyFrom(
                numpy_helper.from_array(
                    np.array([0, 1, -1, embedding.MEL_BINS], np.int64), init.name
                )
            )
    # [clips, 96, windows, 1] (NCHW) -> [clips, windows, 1, 96]
    index = list(graph.node).index(last)
    graph.node.remove(last)
    graph.node.insert(
        index,
        helper.make_node(
            "Transpose", [last.input[0]], [last.output[0]], name=last.name, perm=[0, 2, 3, 1]
        ),
    )
    unused = [init for init in graph.initializer if init.name == last.input[1]]
    for init in unused:
        graph.initializer.remove(init)
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_param, dims[1].dim_param = "clips", "frames"
    out = graph.output[0].type.tensor_type.shape.dim
    out[0].dim_param, out[1].dim_param = "clips", "windows"
    del graph.value_info[:]
    return model


def calibration_mel(data: Path) -> np.ndarray:
    """Scaled mel ``[clips, 140, 32, 1]`` of every CALIBRATION_STEP-th real clip under ``data``."""
    from pipeline.core.audio import fit_to_length, read_wav
    from pipeline.core.labels import BACKGROUND_NOISE_DIR
    from pipeline.data.clip_store import list_wavs
    from pipeline.frontends import embedding

    paths = [p for p in list_wavs(data) if p.parent.name != BACKGROUND_NOISE_DIR]
    if not paths:
        raise StageError(f"{data}: no clips (<word>/*.wav) to calibrate on")
    audio = np.stack(
        [fit_to_length(read_wav(p, 16000), 16000) for p in paths[::CALIBRATION_STEP]]
    ).astype(np.float32)
    return embedding.clip_model_input(audio, embedding.clip_input_frames(audio.shape[1]))


def _widened(low: float, high: float) -> tuple[float, float]:
    """(low, high) widened outward to RANGE_DIGITS significant digits (0 stays in the range)."""

    def outward(value: float, up: bool) -> float:
        if value == 0 or not math.isfinite(value):
            return 0.0
        step = 10.0 ** (math.floor(math.log10(abs(value))) - RANGE_DIGITS + 1)
        n = math.ceil(value / step) if up else math.floor(value / step)
        return float(f"{n * step:.{RANGE_DIGITS}g}") if n else 0.0

    return min(outward(low, False), 0.0), max(outward(high, True), 0.0)


class _Reader:
    """Calibration batches for onnxruntime (a fresh iterator per pass)."""

    def __init__(self, mel: np.ndarray):
        self.mel = mel
        self.rewind()

    def rewind(self):
        self.batches = iter(
            [
                {INPUT_NAME: self.mel[i : i + CALIBRATION_BATCH]}
                for i in range(0, len(self.mel), CALIBRATION_BATCH)
            ]
        )

    def get_next(self):
        return next(self.batches, None)


def quantize(data: Path) -> bytes:
    """The int8 model's bytes, calibrated on the clips under ``data``."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.calibrate import create_calibrator
    from onnxruntime.quantization.shape_inference import quant_pre_process

    mel = calibration_mel(data)

    class Reader(_Reader, CalibrationDataReader):
        pass

    with tempfile.TemporaryDirectory(prefix="kws_quantize_") as tmp:
        tmp = Path(tmp)
        onnx.save(float_model(), str(tmp / "float.onnx"))
        quant_pre_process(str(tmp / "float.onnx"), str(tmp / "pre.onnx"), skip_optimization=True)
        # Activation ranges: every tensor the quantizer will read, min/max over the real mel.
        calibrator = create_calibrator(
            tmp / "pre.onnx", None, augmented_model_path=str(tmp / "augmented.onnx")
        )
        calibrator.collect_data(Reader(mel))
        ranges = calibrator.compute_data()
        del calibrator
        overrides = {}
        for name in sorted(ranges.data):
            low, high = (float(np.asarray(v).reshape(-1)[0]) for v in ranges.data[name].range_value)
            rmin, rmax = _widened(low, high)
            overrides[name] = [{"rmin": np.float32(rmin), "rmax": np.float32(rmax)}]
        quantize_static(
            str(tmp / "pre.onnx"),
            str(tmp / "int8.onnx"),
            Reader(mel[:CALIBRATION_BATCH]),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"TensorQuantOverrides": overrides},
        )
        return (tmp / "int8.onnx").read_bytes()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="real clips (<word>/*.wav) to calibrate on (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="the model file to write (default: the packaged asset)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate and compare with --out byte for byte; write nothing",
    )


def main(argv=None) -> int:
    args = parse_args(__name__, argv)
    out = args.out or asset_path()
    if not args.data.is_dir():
        raise StageError(f"{args.data}: no such folder (the real clips to calibrate on)")
    model = quantize(args.data)
    if args.check:
        if not out.is_file():
            raise StageError(f"{out}: no such file to check")
        if out.read_bytes() != model:
            raise StageError(f"{out}: differs from the model regenerated from {args.data}")
        print(f"{out}: identical to the model regenerated from {args.data} ({len(model):,} bytes)")
        return 0
    atomic_write_bytes(out, model)
    print(f"wrote {out} ({len(model):,} bytes)")
    return 0


if __name__ == "__main__":
    run_main(main)
