"""Live keyword spotting: the words said into the microphone, or into standard input, as they come.

    kws listen [--model models/export] [--device DEVICE] [--window] [decoder flags]
    kws listen --list-devices
    arecord -f S16_LE -r 16000 -c 1 | kws listen -

Each detection is printed as it happens, ``time_s label score latency_ms`` (seconds since the
start of the audio; the latency from the arrival of the sample that completed the deciding
window to the line). ``-`` reads raw 16-bit little-endian PCM from standard input (``--rate``,
``--channels``: how it was recorded; converted to the model's when they differ) and needs no
audio library; the microphone is read through PortAudio by the sounddevice package (optional:
``pip install sounddevice`` and the PortAudio library, Debian's libportaudio2). The export's
streaming model runs frame by frame where there is one (``--window``: the window model instead);
the decoder settings default to the export's decoder.json, the flags override them, and one line
on standard error says which were used. Standard input ending ends the run; Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pipeline.cli import parse_args, run_main, stdout_to_devnull
from pipeline.core import paths
from pipeline.core.audio import PcmConverter, pcm16_blocks
from pipeline.core.errors import StageError, first_line
from pipeline.streaming.detect import detect
from pipeline.streaming.operating_point import (
    add_decoder_flags,
    decoder_settings,
    describe,
    flag_overrides,
)
from pipeline.streaming.scorers import has_streaming_model, make_scorer

DESCRIPTION = __doc__.splitlines()[0]
BLOCK_MS = 100  # the most audio one read waits for
STDIN_HINT = "or pipe raw audio in: arecord -f S16_LE -r 16000 -c 1 | kws listen -"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        nargs="?",
        choices=["-"],
        help="-: raw 16-bit little-endian PCM on standard input (default: the microphone)",
    )
    parser.add_argument(
        "--model",
        default=str(paths.EXPORT_DIR),
        help="an export folder, .tflite, .keras or frozen .pb (default %(default)s)",
    )
    parser.add_argument("--labels", help="labels file (default: found beside the model)")
    parser.add_argument("--device", help="the input device (a number or part of its name)")
    parser.add_argument("--list-devices", action="store_true", help="list the audio devices")
    parser.add_argument(
        "--rate", type=int, help="standard input's sample rate (default: the model's)"
    )
    parser.add_argument("--channels", type=int, default=1, help="standard input's channels")
    parser.add_argument(
        "--window",
        action="store_true",
        help="score windows with the window model even where the export has a streaming one",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per detection")
    add_decoder_flags(parser)


def sounddevice_module():
    """The sounddevice package, or one StageError saying how to listen without it."""
    try:
        import sounddevice
    except ImportError:
        raise StageError(
            "listening to a microphone needs the sounddevice package (pip install sounddevice) "
            f"and the PortAudio library (Debian: libportaudio2); {STDIN_HINT}"
        ) from None
    except OSError as exc:  # installed, but PortAudio is missing
        raise StageError(
            f"the sounddevice package cannot load PortAudio ({first_line(exc)}; Debian: "
            f"apt-get install libportaudio2); {STDIN_HINT}"
        ) from None
    return sounddevice


def _device(text):
    return int(text) if text is not None and text.isdigit() else text


def microphone_blocks(device, rate: int, block_frames: int):
    """Blocks of mono float32 from the input ``device`` (default: the system's) at ``rate``."""
    sd = sounddevice_module()
    try:
        stream = sd.InputStream(
            samplerate=rate, channels=1, dtype="int16", device=_device(device), blocksize=0
        )
    except (sd.PortAudioError, ValueError) as exc:
        name = "the default audio input" if device is None else f"audio input {device!r}"
        raise StageError(
            f"cannot open {name} at {rate} Hz: {first_line(exc)} (kws listen --list-devices "
            f"lists them); {STDIN_HINT}"
        ) from None
    convert = PcmConverter(1, rate)
    with stream:
        while True:
            data, _ = stream.read(block_frames)
            yield convert(data.reshape(-1))


def main(argv=None) -> int:
    args = parse_args(__name__, argv)
    if args.list_devices:
        print(sounddevice_module().query_devices())
        return 0
    if args.channels < 1 or (args.rate is not None and args.rate < 1):
        raise StageError("--rate and --channels must be at least 1")
    settings, source = decoder_settings(args.model, flag_overrides(args))
    streaming = not args.window and has_streaming_model(args.model)
    if args.source is None:
        sounddevice_module()  # no audio library: say so before loading a model
    scorer = make_scorer(
        Path(args.model),
        settings.clip_stride_ms,
        labels_path=args.labels,
        streaming=streaming,
        progress=False,
    )
    rate = int(scorer.sample_rate)
    block_frames = rate * BLOCK_MS // 1000
    if args.source == "-":
        if sys.stdin is None:
            raise StageError("standard input is closed: nothing to listen to")
        converter = PcmConverter(args.channels, args.rate or rate, rate)
        blocks = pcm16_blocks(sys.stdin.buffer, converter, block_frames)
        where = "standard input" + (f" ({', '.join(converter.notes)})" if converter.notes else "")
    else:
        blocks = microphone_blocks(args.device, rate, block_frames)
        where = "the default audio input" if args.device is None else f"input {args.device}"
    print(describe(settings, source), file=sys.stderr)
    print(
        f"listening to {where} with the {scorer.describe()} ({args.model}); Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    arrival = [time.monotonic()]

    def timed(blocks):
        for block in blocks:
            arrival[0] = time.monotonic()
            yield block

    try:
        for word in detect(scorer, timed(blocks), settings, eager=True):
            window_end = word.time_ms * rate // 1000 + int(scorer.desired_samples)
            latency_ms = (
                1000 * (time.monotonic() - arrival[0])
                + 1000 * max(0, word.samples - window_end) / rate
            )
            if args.json:
                line = json.dumps(
                    {
                        "time_s": word.time_ms / 1000,
                        "label": word.label,
                        "score": round(word.score, 6),
                        "latency_ms": round(latency_ms),
                    }
                )
            else:
                line = f"{word.time_ms / 1000:.3f} {word.label} {word.score:.3f} {latency_ms:.0f}"
            print(line, flush=True)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    except BrokenPipeError:
        # Whoever read the lines has gone: say so once, and let nothing write there again.
        stdout_to_devnull()
        raise StageError("standard output was closed; stopped listening") from None
    return 0


if __name__ == "__main__":
    run_main(main)
