"""Stage `download`: fetch and check the data set, and pack it into clip stores under data/raw/.

Usage: ``python -m pipeline.stages.download [--params params.yaml] [--out data/raw]
[--cache-dir .cache/downloads]``.
"""

from __future__ import annotations

import argparse

from pipeline.cli import run_stage
from pipeline.core import paths
from pipeline.core.clip import ClipFormat
from pipeline.core.params import load_params
from pipeline.data.acquire.sources import build_raw
from pipeline.data.config import DataConfig, SplitConfig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(paths.PARAMS))
    parser.add_argument("--out", default=str(paths.RAW_DIR))
    parser.add_argument(
        "--cache-dir",
        default=str(paths.DOWNLOAD_CACHE),
        help="download cache (partial downloads are kept between runs, complete ones only with "
        "data.keep_download)",
    )
    args = parser.parse_args(argv)
    data, clip, split = load_params(args.params, DataConfig, ClipFormat, SplitConfig)
    # The embedded source speaks the wanted words (other sources ignore them).
    build_raw(args.out, data, clip, args.cache_dir, wanted_words=split.wanted_words)
    return 0


if __name__ == "__main__":
    run_stage(main)
