"""WAV input and output shared by every stage.

The data set is 16-bit mono PCM WAV. Reading parses the RIFF chunks itself so that each kind of
bad file gets its own message (not a WAV, truncated, not PCM 16-bit, not mono, wrong rate) naming
the file, which is what a user needs to fix or skip it. :func:`decode_any_wav` also reads the
other common WAV sample formats (PCM 8/24/32-bit, float 32/64-bit, any channel count), which the
download stage converts when it takes in a folder of the user's own recordings.
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.core.errors import WavError
from pipeline.core.fs import atomic_write_bytes

WAVE_FORMAT_PCM = 1
WAVE_FORMAT_IEEE_FLOAT = 3
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# (format tag, bits per sample) -> the encoding's name, for what decode_any_wav reads.
WAV_ENCODINGS = {
    (WAVE_FORMAT_PCM, 8): "8-bit PCM",
    (WAVE_FORMAT_PCM, 16): "16-bit PCM",
    (WAVE_FORMAT_PCM, 24): "24-bit PCM",
    (WAVE_FORMAT_PCM, 32): "32-bit PCM",
    (WAVE_FORMAT_IEEE_FLOAT, 32): "32-bit float",
    (WAVE_FORMAT_IEEE_FLOAT, 64): "64-bit float",
}


@dataclass(frozen=True)
class WavInfo:
    sample_rate: int
    channels: int
    bits_per_sample: int
    format_tag: int
    num_frames: int


def _parse_fmt(body: bytes, path) -> tuple[int, int, int, int]:
    """(format tag, channels, sample rate, bits per sample) from a fmt chunk's body."""
    if len(body) < 16:
        raise WavError(path, "truncated fmt chunk")
    format_tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
    if format_tag == WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
        (format_tag,) = struct.unpack("<H", body[24:26])
    return format_tag, channels, rate, bits


def _parse(data: bytes, path) -> tuple[WavInfo, bytes]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError(path, "not a WAV file (no RIFF/WAVE header)")
    pos = 12
    fmt = None
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        body = data[pos + 8 : pos + 8 + size]
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(body, path)
        elif chunk_id == b"data":
            if fmt is None:
                raise WavError(path, "data chunk before fmt chunk")
            if len(body) < size:
                raise WavError(
                    path, f"truncated: header promises {size} data bytes, file has {len(body)}"
                )
            format_tag, channels, rate, bits = fmt
            frame_bytes = max(1, channels * bits // 8)
            info = WavInfo(rate, channels, bits, format_tag, len(body) // frame_bytes)
            return info, body
        pos += 8 + size + (size & 1)
    if fmt is None:
        raise WavError(path, "truncated or corrupt: no fmt chunk")
    raise WavError(path, "truncated or corrupt: no data chunk")


def read_wav_info(path) -> WavInfo:
    """Header facts of a WAV file, raising WavError for files that are not valid WAVs."""
    return _parse(Path(path).read_bytes(), path)[0]


def read_wav_header(path) -> WavInfo:
    """Header facts without reading the samples: checking 100k files this way is I/O-cheap.

    Raises the same WavErrors as :func:`read_wav_info` (not a WAV, no fmt/data chunk, data chunk
    shorter than its header promises); the sample format itself is checked by
    :func:`check_pcm16_mono`.
    """
    return _locate_data(path)[0]


def _locate_data(path) -> tuple[WavInfo, int, int]:
    """The header facts, where the samples start and how many bytes they are, read from the
    chunk headers alone (the samples are not read)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise WavError(path, f"cannot read: {exc.strerror}") from None
    try:
        file_size = os.fstat(fd).st_size
        head = os.pread(fd, 4096, 0)  # the chunk headers of a usual WAV, in one read

        def read_at(offset: int, length: int) -> bytes:
            if offset + length <= len(head):
                return head[offset : offset + length]
            return os.pread(fd, length, offset)

        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise WavError(path, "not a WAV file (no RIFF/WAVE header)")
        pos = 12
        fmt = None
        while pos + 8 <= file_size:
            chunk_id, size = struct.unpack("<4sI", read_at(pos, 8))
            if chunk_id == b"fmt ":
                fmt = _parse_fmt(read_at(pos + 8, min(size, 64)), path)
            elif chunk_id == b"data":
                if fmt is None:
                    raise WavError(path, "data chunk before fmt chunk")
                available = file_size - (pos + 8)
                if available < size:
                    raise WavError(
                        path, f"truncated: header promises {size} data bytes, file has {available}"
                    )
                format_tag, channels, rate, bits = fmt
                frame_bytes = max(1, channels * bits // 8)
                return WavInfo(rate, channels, bits, format_tag, size // frame_bytes), pos + 8, size
            pos += 8 + size + (size & 1)
    except OSError as exc:
        raise WavError(path, f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if fmt is None:
        raise WavError(path, "truncated or corrupt: no fmt chunk")
    raise WavError(path, "truncated or corrupt: no data chunk")


def check_pcm16_mono(info: WavInfo, path, sample_rate: int | None = None) -> None:
    """Raise WavError unless the clip is 16-bit mono PCM (at ``sample_rate`` if given)."""
    if info.format_tag != WAVE_FORMAT_PCM:
        raise WavError(path, f"not PCM (format tag {info.format_tag}); expected 16-bit PCM")
    if info.bits_per_sample != 16:
        raise WavError(path, f"{info.bits_per_sample}-bit samples; expected 16-bit PCM")
    if info.channels != 1:
        raise WavError(path, f"{info.channels} channels; expected mono")
    if sample_rate is not None and info.sample_rate != sample_rate:
        raise WavError(path, f"sample rate {info.sample_rate} Hz; expected {sample_rate} Hz")


def decode_pcm16_bytes(
    data: bytes, path="<bytes>", sample_rate: int | None = None
) -> tuple[np.ndarray, int]:
    """The int16 samples and rate of 16-bit mono PCM WAV bytes; check the rate if given.

    Every valid form is read: WAVE_FORMAT_EXTENSIBLE, padded odd-length chunks before ``data``,
    an odd data byte count (the last half sample is dropped).
    """
    info, body = _parse(data, path)
    check_pcm16_mono(info, path, sample_rate)
    return np.frombuffer(body[: len(body) - len(body) % 2], dtype="<i2"), info.sample_rate


def decode_wav_bytes(
    data: bytes, path="<bytes>", sample_rate: int | None = None
) -> tuple[np.ndarray, int]:
    """Decode 16-bit mono PCM WAV bytes to float32 in [-1, 1); check the rate if given."""
    pcm, rate = decode_pcm16_bytes(data, path, sample_rate)
    return pcm.astype(np.float32) / 32768.0, rate


def canonical_wav_bytes(data: bytes, path="<bytes>", sample_rate: int | None = None) -> bytes:
    """The same samples as plain 44-byte-header PCM WAV bytes (checked as decode_pcm16_bytes).

    TensorFlow's DecodeWav accepts only that plain form, so a model that decodes WAV bytes
    inside its graph is fed these: every backend then scores the samples this module reads.
    """
    pcm, rate = decode_pcm16_bytes(data, path, sample_rate)
    return encode_pcm16(pcm, rate)


def wav_encoding(info: WavInfo) -> str:
    """The sample encoding's name ("24-bit PCM", "32-bit float"); '' when
    :func:`decode_any_wav` cannot read it."""
    return WAV_ENCODINGS.get((info.format_tag, info.bits_per_sample), "")


def unsupported_encoding(info: WavInfo) -> str:
    """Why :func:`decode_any_wav` cannot read a WAV of this header ('' when it can)."""
    if info.channels < 1:
        return "0 channels"
    if wav_encoding(info):
        return ""
    return (
        f"format tag {info.format_tag} with {info.bits_per_sample}-bit samples; readable are PCM "
        "8/16/24/32-bit and float 32/64-bit"
    )


def decode_any_wav(data: bytes, path="<bytes>") -> tuple[np.ndarray, int]:
    """Samples of a PCM (8/16/24/32-bit) or float (32/64-bit) WAV with any channel count, as
    float32 ``(frames, channels)`` in [-1, 1] (floats as stored), and its sample rate."""
    info, body = _parse(data, path)
    problem = unsupported_encoding(info)
    if problem:
        raise WavError(path, problem)
    width = info.bits_per_sample // 8
    body = body[: len(body) - len(body) % (width * info.channels)]
    if info.format_tag == WAVE_FORMAT_IEEE_FLOAT:
        samples = np.frombuffer(body, dtype="<f4" if width == 4 else "<f8").astype(np.float32)
    elif width == 1:  # 8-bit WAV is unsigned, 128 the zero level
        samples = (np.frombuffer(body, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 3:  # little-endian 24-bit: widen to int32 by a zero low byte
        raw = np.frombuffer(body, dtype=np.uint8).reshape(-1, 3)
        wide = np.zeros((len(raw), 4), np.uint8)
        wide[:, 1:] = raw
        samples = (wide.view("<i4")[:, 0] / 2.0**31).astype(np.float32)
    else:
        dtype = "<i2" if width == 2 else "<i4"
        samples = (np.frombuffer(body, dtype=dtype) / float(2 ** (8 * width - 1))).astype(
            np.float32
        )
    return samples.reshape(-1, info.channels), info.sample_rate


def read_wav(path, sample_rate: int | None = None, resample: bool = False) -> np.ndarray:
    """Read a 16-bit mono PCM WAV as float32 samples in [-1, 1).

    With ``resample=True`` a clip at another rate is converted to ``sample_rate`` (soxr, high
    quality) instead of being rejected.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise WavError(path, f"cannot read: {exc.strerror}") from None
    samples, rate = decode_wav_bytes(data, path, None if resample else sample_rate)
    if resample and sample_rate is not None and rate != sample_rate:
        import soxr

        samples = soxr.resample(samples, rate, sample_rate).astype(np.float32)
    return samples


def read_pcm16(path, sample_rate: int | None = None) -> np.ndarray:
    """The int16 samples of a 16-bit mono PCM WAV (at ``sample_rate`` if given), as stored."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise WavError(path, f"cannot read: {exc.strerror}") from None
    return decode_pcm16_bytes(data, path, sample_rate)[0]


# A recording read in blocks: four seconds of 16 kHz audio a read (its memory, whatever the length).
BLOCK_FRAMES = 65536


class PcmConverter:
    """Interleaved 16-bit PCM blocks -> mono float32 in [-1, 1) at ``out_rate``: channels mixed
    (their mean), another rate resampled by soxr's streaming resampler (its state carried from
    block to block). ``notes`` says what it converts, in words; nothing converted gives the
    samples exactly as :func:`decode_wav_bytes`."""

    def __init__(self, channels: int, in_rate: int, out_rate: int | None = None):
        self.channels, self.in_rate = int(channels), int(in_rate)
        self.out_rate = self.in_rate if out_rate is None else int(out_rate)
        self.notes = []
        if self.channels != 1:
            self.notes.append(f"{self.channels} channels mixed to mono")
        self._resampler = None
        if self.out_rate != self.in_rate:
            import soxr

            self._resampler = soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32")
            self.notes.append(f"resampled from {self.in_rate} Hz to {self.out_rate} Hz")

    def __call__(self, pcm: np.ndarray, last: bool = False) -> np.ndarray:
        """The float32 samples of ``pcm`` (int16, interleaved); ``last`` flushes the resampler."""
        samples = np.asarray(pcm, dtype="<i2").astype(np.float32) / 32768.0
        if self.channels != 1:
            samples = samples.reshape(-1, self.channels).mean(axis=1, dtype=np.float32)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=last).astype(np.float32)
        return samples


class WavReader:
    """A 16-bit PCM WAV read block by block: the header first, then at most ``block_frames``
    frames a read, so that a recording of any length costs the memory of one block.

    ``blocks()`` gives mono float32 in [-1, 1) at ``sample_rate`` (the file's own when None).
    With ``convert`` a recording of several channels or at another rate is converted
    (PcmConverter; ``notes`` says how); without, either is a WavError naming the file. A file
    that is not 16-bit PCM is always one."""

    def __init__(
        self,
        path,
        sample_rate: int | None = None,
        *,
        convert: bool = False,
        block_frames: int = BLOCK_FRAMES,
    ):
        self.path = path
        self.info, self._offset, self._size = _locate_data(path)
        if convert:  # the sample format alone: channels and rate are converted
            check_pcm16_mono(dataclasses.replace(self.info, channels=1), path)
        else:
            check_pcm16_mono(self.info, path, sample_rate)
        if self.info.channels < 1 or self.info.sample_rate < 1:
            raise WavError(
                path, f"{self.info.channels} channels at {self.info.sample_rate} Hz in its header"
            )
        self.sample_rate = self.info.sample_rate if sample_rate is None else int(sample_rate)
        self.block_frames = max(1, int(block_frames))
        self.notes = PcmConverter(self.info.channels, self.info.sample_rate, self.sample_rate).notes

    @property
    def num_samples(self) -> int:
        """Samples ``blocks()`` gives in all (a resampled length rounded as soxr rounds it)."""
        frames = self.info.num_frames
        if self.sample_rate == self.info.sample_rate:
            return frames
        return int(round(frames * self.sample_rate / self.info.sample_rate))

    @property
    def duration_s(self) -> float:
        return self.info.num_frames / self.info.sample_rate

    def blocks(self):
        """The samples, block after block (float32 1-D arrays; none empty)."""
        convert = PcmConverter(self.info.channels, self.info.sample_rate, self.sample_rate)
        frame_bytes = 2 * self.info.channels
        remaining = self.info.num_frames * frame_bytes
        try:
            with open(self.path, "rb") as file:
                file.seek(self._offset)
                while remaining > 0:
                    want = min(remaining, self.block_frames * frame_bytes)
                    data = file.read(want)
                    if len(data) < want:
                        raise WavError(self.path, "truncated while it was read")
                    remaining -= want
                    block = convert(np.frombuffer(data, dtype="<i2"), last=remaining == 0)
                    if len(block):
                        yield block
        except OSError as exc:
            raise WavError(self.path, f"cannot read: {exc.strerror}") from None


def pcm16_blocks(stream, converter: PcmConverter, block_frames: int = 1600):
    """Raw interleaved little-endian 16-bit PCM from a binary stream (a pipe, as ``arecord -f
    S16_LE`` writes), converted block by block (float32 1-D arrays, none empty) until the
    stream ends. A read returns what has arrived, at most ``block_frames`` frames, so the
    samples come as soon as they are written; a partial frame at the end is dropped."""
    frame_bytes = 2 * converter.channels
    read = getattr(stream, "read1", stream.read)
    pending = b""
    while True:
        data = read(block_frames * frame_bytes)
        if not data:
            break
        pending += data
        usable = len(pending) - len(pending) % frame_bytes
        if usable:
            block = converter(np.frombuffer(pending[:usable], dtype="<i2"))
            pending = pending[usable:]
            if len(block):
                yield block
    tail = converter(np.zeros(0, "<i2"), last=True)
    if len(tail):
        yield tail


def encode_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    """Encode float samples in [-1, 1] as 16-bit mono PCM WAV bytes (values are clipped)."""
    pcm = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32767.0), -32768, 32767)
    return encode_pcm16(pcm.astype("<i2"), sample_rate)


def encode_pcm16(pcm: np.ndarray, sample_rate: int) -> bytes:
    """WAV bytes of int16 samples, unchanged (a packed clip written back out exactly)."""
    pcm = np.asarray(pcm, dtype="<i2").tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(pcm),
        b"WAVE",
        b"fmt ",
        16,
        WAVE_FORMAT_PCM,
        1,
        sample_rate,
        sample_rate * 2,
        2,
        16,
        b"data",
        len(pcm),
    )
    buffer = io.BytesIO()
    buffer.write(header)
    buffer.write(pcm)
    return buffer.getvalue()


def write_wav(path, samples: np.ndarray, sample_rate: int) -> None:
    """Write a 16-bit mono PCM WAV atomically (no half-written file on failure)."""
    atomic_write_bytes(path, encode_wav(samples, sample_rate))


def fit_to_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Pad with zeros at the end or truncate to ``length`` samples, as the original decoder does."""
    if len(samples) >= length:
        return samples[:length]
    return np.pad(samples, (0, length - len(samples)))
