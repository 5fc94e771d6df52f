"""List the clips of a clip store, or write clips back out as WAV files.

The download stage packs each data set into a clip store (``data/raw/dataset/``,
``data/raw/official_test/``: ``audio.npy`` + ``index.csv``); this gets a clip out to listen to it or
to feed it to a tool that takes WAV files.

Usage::

    kws extract-clip --list [PATTERN ...] [--store data/raw/dataset]
    kws extract-clip yes/0a7c2a8d_nohash_0.wav --out clip.wav
    kws extract-clip 'yes/*' 'no/*' --out-dir some/folder      # keeps the <word>/ folders

A name may be given as the store name (``yes/0a7c2a8d_nohash_0.wav``) or as the path the manifests
use (``data/raw/dataset/yes/0a7c2a8d_nohash_0.wav``); ``--list`` and ``--out-dir`` take shell
patterns (``fnmatch``). The WAV files hold exactly the stored samples (16-bit mono PCM).
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path

from pipeline.cli import parse_args, run_main, stdout_to_devnull
from pipeline.core import paths
from pipeline.core.errors import StageError
from pipeline.core.fs import atomic_write_bytes, check_output_file, join_under
from pipeline.data.clip_store import INDEX_FILE, ClipStore

DESCRIPTION = "List the clips of a clip store, or write clips back out as WAV files."


def _store_name(store: ClipStore, given: str) -> str:
    """``given`` as a name inside ``store`` (a manifest path under the store folder works too)."""
    prefix = store.folder.as_posix().rstrip("/") + "/"
    return given[len(prefix) :] if given.startswith(prefix) else given


def _matching(store: ClipStore, patterns: list[str]) -> list[str]:
    if not patterns:
        return store.names
    wanted = [_store_name(store, p) for p in patterns]
    return [name for name in store.names if any(fnmatch.fnmatchcase(name, p) for p in wanted)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names", nargs="*", help="clip names or patterns (yes/0a7c2a8d_nohash_0.wav, 'yes/*')"
    )
    parser.add_argument(
        "--store",
        default=str(paths.DATASET_DIR),
        help=f"the clip store folder (default {paths.DATASET_DIR}; also {paths.OFFICIAL_TEST_DIR})",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--list", action="store_true", help="print name, word, speaker, seconds of matching clips"
    )
    action.add_argument("--out", help="write the one named clip to this WAV file")
    action.add_argument(
        "--out-dir", help="write every matching clip under this folder as <word>/<file>.wav"
    )


def main(argv=None) -> int:
    args = parse_args(__name__, argv)
    with ClipStore(args.store) as store:
        if args.list:
            rate = store.sample_rate or 1
            try:
                for name in _matching(store, args.names):
                    entry = store.entry(name)
                    sys.stdout.write(
                        f"{entry.name}\t{entry.word}\t{entry.speaker}\t{entry.length / rate:.3f}\n"
                    )
                sys.stdout.flush()
            except BrokenPipeError:  # `kws extract-clip --list | head`: the reader has had enough
                stdout_to_devnull()
            return 0
        if args.out:
            if len(args.names) != 1:
                raise StageError(
                    "--out writes one clip: give exactly one name (--out-dir writes many)"
                )
            name = _store_name(store, args.names[0])
            check_output_file(args.out)
            atomic_write_bytes(args.out, store.wav_bytes(name))  # StageError naming it if absent
            print(f"wrote {args.out} ({name}, {store.entry(name).length} samples)")
            return 0
        names = _matching(store, args.names)
        if not names:
            raise StageError(f"{store.folder}: no clip matches {' '.join(args.names)}")
        out_dir = Path(args.out_dir)
        for name in names:  # names come from index.csv: none may lead out of out_dir
            target = join_under(out_dir, name, store.folder / INDEX_FILE)
            atomic_write_bytes(target, store.wav_bytes(name))
        print(f"wrote {len(names)} clip(s) under {out_dir}")
    return 0


if __name__ == "__main__":
    run_main(main)
