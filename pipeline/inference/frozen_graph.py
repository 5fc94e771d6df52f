"""The original tutorial's frozen GraphDef, as a baseline and for compatibility."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.errors import StageError
from pipeline.core.tf import tensorflow
from pipeline.inference.base import BATCH, KwsModel


class FrozenGraphModel(KwsModel):
    """The original tutorial's frozen GraphDef (wav_data -> ... -> Mfcc -> labels_softmax).

    WAV bytes go through the graph's own input, as in the original label_wav (re-encoded as plain
    PCM WAV from the samples pipeline.core.audio reads, which DecodeWav accepts). For batches and
    streaming the graph is imported a second time with its ``Mfcc:0`` tensor replaced by a
    [None, frames, bins] placeholder, and features are computed with the same AudioSpectrogram and
    Mfcc ops and attributes that the graph holds.
    """

    kind = "frozen_graph"
    INPUT = "wav_data:0"
    OUTPUT = "labels_softmax:0"

    def __init__(self, path: Path, labels: list[str]):
        tf = tensorflow()
        self.tf = tf
        self.path = path
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(path.read_bytes())
        except Exception as exc:  # protobuf raises its own DecodeError
            raise StageError(f"{path}: not a TensorFlow GraphDef ({exc})") from None
        nodes = {n.name: n for n in graph_def.node}
        for name in (
            "wav_data",
            "decoded_sample_data",
            "AudioSpectrogram",
            "Mfcc",
            "labels_softmax",
        ):
            if name not in nodes:
                raise StageError(
                    f"{path}: frozen graph has no node {name!r}; expected the "
                    "original speech_commands freeze.py layout"
                )
        decode, spec, mfcc = nodes["decoded_sample_data"], nodes["AudioSpectrogram"], nodes["Mfcc"]
        self.desired_samples = int(decode.attr["desired_samples"].i)
        self.spectrogram_attrs = dict(
            window_size=int(spec.attr["window_size"].i),
            stride=int(spec.attr["stride"].i),
            magnitude_squared=bool(spec.attr["magnitude_squared"].b),
        )
        self.mfcc_attrs = dict(
            upper_frequency_limit=float(mfcc.attr["upper_frequency_limit"].f),
            lower_frequency_limit=float(mfcc.attr["lower_frequency_limit"].f),
            filterbank_channel_count=int(mfcc.attr["filterbank_channel_count"].i),
            dct_coefficient_count=int(mfcc.attr["dct_coefficient_count"].i),
        )
        # The graph's DecodeWav reads the rate from the file; the model was trained at 16 kHz.
        self.sample_rate = 16000
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.import_graph_def(graph_def, name="")
            mfcc_shape = self.graph.get_tensor_by_name("Mfcc:0").shape
            self.features_in = tf.compat.v1.placeholder(
                tf.float32, [None, *mfcc_shape[1:]], name="batched_features"
            )
            (self.features_out,) = tf.import_graph_def(
                graph_def,
                input_map={"Mfcc:0": self.features_in},
                return_elements=[self.OUTPUT],
                name="batched",
            )
        self.session = tf.compat.v1.Session(graph=self.graph)
        self.frames_per_clip = int(mfcc_shape[1])
        self.feature_shape = (int(mfcc_shape[1]), int(mfcc_shape[2]))
        self.frame_stride_samples = self.spectrogram_attrs["stride"]
        self.labels = labels
        self._check_labels(int(self.graph.get_tensor_by_name(self.OUTPUT).shape[-1]), path)

    def predict_wav_bytes(self, data: bytes, name: str = "<bytes>") -> np.ndarray:
        # Checked and re-encoded: a clear WavError instead of a TensorFlow op error, and the forms
        # DecodeWav rejects (WAVE_FORMAT_EXTENSIBLE, odd chunks) read like everywhere else.
        out = self.session.run(self.OUTPUT, {self.INPUT: self.canonical_wav(data, name)})
        return np.asarray(out, dtype=np.float32)[0]

    def _mfcc(self, audio_columns: np.ndarray) -> np.ndarray:
        """[samples, channels] -> [channels, frames, bins]; each channel is one signal."""
        tf = self.tf
        spectrogram = tf.raw_ops.AudioSpectrogram(input=audio_columns, **self.spectrogram_attrs)
        return np.asarray(
            tf.raw_ops.Mfcc(
                spectrogram=spectrogram, sample_rate=self.sample_rate, **self.mfcc_attrs
            )
        )

    def features(self, audio: np.ndarray) -> np.ndarray:
        return self._mfcc(np.ascontiguousarray(self._check_audio(audio).T))

    def frame_features(self, audio: np.ndarray) -> np.ndarray:
        return self._mfcc(np.asarray(audio, dtype=np.float32).reshape(-1, 1))[0]

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, dtype=np.float32)
        out = [
            self.session.run(self.features_out, {self.features_in: features[i : i + BATCH]})
            for i in range(0, len(features), BATCH)
        ]
        return (
            np.concatenate(out).astype(np.float32)
            if out
            else np.zeros((0, len(self.labels)), np.float32)
        )

    def predict_audio(self, audio: np.ndarray) -> np.ndarray:
        audio = self._check_audio(audio)
        out = [
            self.predict_features(self.features(audio[i : i + BATCH]))
            for i in range(0, len(audio), BATCH)
        ]
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)
