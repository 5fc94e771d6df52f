"""Write the static page that spots keywords in the browser (``kws web``).

The folder holds everything the page loads (nothing comes from the network): the page and its
scripts (assets/), the TensorFlow Lite WebAssembly runtime (assets/runtime/, see its NOTICE),
``model.tflite`` and ``config.json`` (labels, front end, decoder settings).

The model the page runs takes features, computed by the JavaScript front end: by default the
export's window model on one window of features (converted from the SavedModel's ``features``
signature with a batch of one, so it scores what the SavedModel scores), or with ``streaming``
the export's ``model_streaming.tflite``, one feature frame per call.

The speech embedding (``embedding``; pipeline/frontends/embedding.py) is a bundle export with no
SavedModel: the page runs its float head ``model_float.tflite`` (features in, batch of one) as
the window model, and computes the features as ``stream_features`` does: the log-mel in
JavaScript with the mel model's own constants (written into config.json), the wheel's
``embedding_model.tflite`` (copied into ``embedding/`` with its NOTICE) on every 76 mel frames,
8 frames (80 ms) apart. Python clamps the mel at 80 dB below the loudest frame of the whole
recording; live audio has no whole recording, so the page clamps at 80 dB below the loudest frame
heard so far (see kws.js). ``embedding_int8`` (an ONNX model) is not supported.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from pipeline.core.errors import StageError
from pipeline.core.fs import atomic_dir, atomic_write_json
from pipeline.core.labels import read_labels
from pipeline.core.tf import tensorflow
from pipeline.inference.export_files import features_of, read_frontend, read_mapping
from pipeline.streaming.config import StreamEvalConfig
from pipeline.streaming.operating_point import decoder_dict

ASSETS = Path(__file__).resolve().parent / "assets"
# The speech embedding's licence notice, copied beside its model into an embedding page.
EMBEDDING_NOTICE = Path(__file__).resolve().parent / "embedding" / "NOTICE"
# Front ends kws.js computes (its FRONT_ENDS).
PAGE_FRONTENDS = ("mfcc", "embedding")
MODEL = "model.tflite"
# Where an embedding page keeps the embedding model (and its NOTICE).
EMBEDDING_MODEL = "embedding/embedding_model.tflite"
# The bundle export's float head, which takes features (the page's window model for embedding).
HEAD_MODEL = "model_float.tflite"
# A folder holding these is a page written before, which ``write_page`` may replace.
PAGE_MARKERS = ("config.json", "kws.js")


def read_export(export: Path, streaming: bool) -> tuple[dict[str, Any], list[str]]:
    """The export's frontend.json and labels, checked usable by the page."""
    export = Path(export)
    if not export.exists():
        raise FileNotFoundError(f"{export}: no such export folder")
    if not export.is_dir():
        raise StageError(f"{export}: not a folder; give the export folder (models/export)")
    if not (export / "frontend.json").is_file():
        raise StageError(f"{export}: no frontend.json; not an export folder (models/export)")
    path = export / "frontend.json"
    raw = read_mapping(path)
    features = raw.get("features", raw)
    name = features.get("preprocess") if isinstance(features, dict) else None
    if name not in PAGE_FRONTENDS:
        raise StageError(
            f"{export}: its front end is {name!r}; the page computes only "
            f"{', '.join(PAGE_FRONTENDS)} in JavaScript"
        )
    frontend = read_frontend(path)
    cfg = features_of(path, frontend)
    labels = read_labels(export / "labels.txt")
    if streaming and cfg.preprocess == "embedding":
        raise StageError(
            f"{export}: the page runs the speech embedding with the window model only "
            "(leave out --streaming)"
        )
    if streaming and not (export / "model_streaming.tflite").is_file():
        raise StageError(f"{export}: no model_streaming.tflite (this model has no streaming form)")
    if cfg.preprocess == "embedding":
        check_head(export, frontend, cfg.feature_shape)
    elif not streaming and not (export / "saved_model" / "saved_model.pb").is_file():
        raise StageError(f"{export}: no saved_model/ (the page's window model is made from it)")
    page_frontend = {
        "preprocess": cfg.preprocess,
        "sample_rate": int(cfg.sample_rate),
        "desired_samples": int(cfg.desired_samples),
        "window_size_samples": int(cfg.window_size_samples),
        "frame_stride_samples": int(cfg.frontend.stream_stride_samples(cfg)),
        "feature_bin_count": int(cfg.feature_bin_count),
        "feature_shape": [int(v) for v in cfg.feature_shape],
    }
    views = frontend.get("views", [1.0])
    return {
        "frontend": page_frontend,
        "streaming": frontend.get("streaming"),
        "views": views,
    }, labels


def check_head(export: Path, frontend: dict[str, Any], feature_shape) -> None:
    """The bundle's float head must take one window of features ``[1, *feature_shape]``."""
    if not (export / HEAD_MODEL).is_file():
        raise StageError(f"{export}: no {HEAD_MODEL} (the page's window model)")
    io = frontend.get("tflite", {}).get(HEAD_MODEL, {})
    shape = io.get("input", {}).get("shape")
    wanted = [1, *(int(v) for v in feature_shape)]
    if io.get("takes") != "features" or shape != wanted:
        raise StageError(
            f"{export}/frontend.json: {HEAD_MODEL} must take features of shape {wanted}, "
            f"it records {io.get('takes')!r} of shape {shape}"
        )


def embedding_frontend(views=(1.0,)) -> dict[str, Any]:
    """What kws.js's SpeechEmbedding needs beyond the sizes: the embedding model's file, the
    padding, framing and windowing of ``stream_features``, and the mel model's own constants (its
    512-sample window, its [257, 32] mel matrix of each vocal-tract view in ``views``, the power
    floor, the dB factor, the top-dB range) as pipeline/frontends/embedding.py reads them."""
    from pipeline.frontends import embedding

    c = embedding.mel_constants()
    return {
        "model": EMBEDDING_MODEL,
        "pad_samples": embedding.PAD_SAMPLES,
        "mel_window_samples": embedding.MEL_WINDOW_SAMPLES,
        "mel_hop_samples": embedding.MEL_HOP_SAMPLES,
        "mel_bins": embedding.MEL_BINS,
        "window_frames": embedding.WINDOW_FRAMES,
        "window_step_frames": embedding.WINDOW_STEP_FRAMES,
        "embedding_dim": embedding.EMBEDDING_DIM,
        "window": [float(v) for v in c["window"]],
        "views": [float(v) for v in views],
        # matrix2 holds each row twice (for interleaved real and imaginary squares).
        "mel_matrices": [
            [[float(v) for v in row] for row in embedding.view_matrix2(view)[::2]] for view in views
        ],
        "floor": float(c["floor"]),
        "db": float(c["db"]),
        "top_db": float(c["top_db"]),
    }


def default_clip_stride_ms(frontend: dict[str, Any]) -> int:
    """The page's clip stride when none is given (``frontend``: read_export's): stream_eval's
    default (the original's 30 ms), but for the embedding, whose windows start only on its
    frames, the fewest whole frames (80 ms each) that reach it."""
    stride = StreamEvalConfig().clip_stride_ms
    if frontend["preprocess"] != "embedding":
        return stride
    frame_ms = frontend["frame_stride_samples"] * 1000 // frontend["sample_rate"]
    return -(-stride // frame_ms) * frame_ms


def window_model(saved_model: Path, feature_shape) -> bytes:
    """Float TFLite of the SavedModel's ``features`` signature on one window ``[1, frames,
    bins]`` (the browser runtime needs a fixed batch)."""
    tf = tensorflow()
    loaded = tf.saved_model.load(str(saved_model))
    if "features" not in loaded.signatures:
        raise StageError(f"{saved_model}: no 'features' signature (re-run freeze)")
    signature = loaded.signatures["features"]

    @tf.function(input_signature=[tf.TensorSpec([1, *feature_shape], tf.float32, name="features")])
    def scores(features):
        return {"labels_softmax": signature(features=features)["labels_softmax"]}

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [scores.get_concrete_function()], loaded
    )
    return converter.convert()


def streaming_io(model: bytes, streaming: dict[str, Any] | None, export: Path) -> dict[str, Any]:
    """How the page calls the streaming model, whose runtime takes and gives tensors in the
    model's order, not by the signature's names: ``states`` (names and shapes, in
    frontend.json's order), ``inputs`` (the signature input at each model input: ``frame`` or a
    state) and ``outputs`` (the signature output number at each model output: 0 the scores, k
    the k-th state)."""
    from pipeline.core.tf import tflite_interpreter

    names = list((streaming or {}).get("inputs", []))[1:]
    if not streaming or not names:
        raise StageError(f"{export}/frontend.json: no streaming section (re-run freeze)")
    interpreter = tflite_interpreter(model_content=model)
    runner = interpreter.get_signature_runner()
    by_index = {d["index"]: key for key, d in runner.get_input_details().items()}
    outputs = {d["index"]: key for key, d in runner.get_output_details().items()}
    return {
        "states": [[name, streaming["states"][name]] for name in names],
        "inputs": [by_index[d["index"]] for d in interpreter.get_input_details()],
        "outputs": [
            int(outputs[d["index"]].rsplit("_", 1)[1]) for d in interpreter.get_output_details()
        ],
    }


def check_out_dir(out: Path) -> Path:
    """``out`` may be written: absent, empty, or a page written before (never another folder's
    contents, which the page replaces)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise StageError(f"{out}: is a file; give a folder to write the page into")
    if (
        out.is_dir()
        and any(out.iterdir())
        and not all((out / name).is_file() for name in PAGE_MARKERS)
    ):
        raise StageError(
            f"{out}: folder is not empty and holds no page written by kws web; "
            "give a new or empty folder"
        )
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise StageError(f"{out}: cannot write there, {parent} is not a folder")
            break
    return out


def write_page(
    export: Path,
    out: Path,
    decoder: StreamEvalConfig | None = None,
    streaming: bool = False,
) -> dict[str, Any]:
    """Write the page for ``export`` into ``out`` (replaced as a whole); return its config.
    ``decoder``: the decoder settings (default: stream_eval's)."""
    export, out = Path(export), check_out_dir(Path(out))
    decoder = decoder or StreamEvalConfig()
    info, labels = read_export(export, streaming)
    frontend = info["frontend"]
    settings = decoder_dict(decoder)  # the decoder.json keys: no matching tolerance
    clip_stride = int(settings["clip_stride_ms"] * frontend["sample_rate"] / 1000)
    config: dict[str, Any] = {
        "model": MODEL,
        "labels": labels,
        "frontend": frontend,
        "decoder": settings,
        "streaming": None,
    }
    embedding = frontend["preprocess"] == "embedding"
    if (streaming or embedding) and clip_stride % frontend["frame_stride_samples"]:
        raise StageError(
            f"clip stride of {settings['clip_stride_ms']} ms is not a whole number of feature "
            f"frames ({frontend['frame_stride_samples']} samples): "
            + (
                "the streaming model scores a window only after a frame"
                if streaming
                else "the embedding's windows start on its frames (--clip-stride-ms 80)"
            )
        )
    if streaming:
        model = (export / "model_streaming.tflite").read_bytes()
        config["streaming"] = streaming_io(model, info["streaming"], export)
    elif embedding:
        model = (export / HEAD_MODEL).read_bytes()
    else:
        model = window_model(export / "saved_model", frontend["feature_shape"])
    if embedding:
        from pipeline.frontends.embedding import models_dir

        embedding_model = models_dir() / Path(EMBEDDING_MODEL).name
        frontend["embedding"] = embedding_frontend(info["views"])
    with atomic_dir(out) as tmp:
        shutil.copytree(ASSETS, tmp, dirs_exist_ok=True)
        (tmp / MODEL).write_bytes(model)
        if embedding:
            (tmp / EMBEDDING_MODEL).parent.mkdir()
            shutil.copyfile(embedding_model, tmp / EMBEDDING_MODEL)
            shutil.copyfile(EMBEDDING_NOTICE, (tmp / EMBEDDING_MODEL).parent / "NOTICE")
        atomic_write_json(tmp / "config.json", config)
    return config
