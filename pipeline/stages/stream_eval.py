"""Stage `stream_eval`: streaming accuracy of the exported model on the synthetic recording
(metrics/stream.json, and the threshold sweep as a DVC plot).

Usage: ``python -m pipeline.stages.stream_eval [--params params.yaml]``; the same evaluation of
any model on any recording is the tool ``python -m pipeline.tools.stream_eval``.
"""
from __future__ import annotations

import argparse

from pipeline.cli import run_main
from pipeline.core import paths
from pipeline.core.fs import atomic_write_json, atomic_write_text
from pipeline.core.params import load_params
from pipeline.streaming.config import StreamEvalConfig
from pipeline.streaming.evaluate import format_summary, run_stream_eval, sweep_csv


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=str(paths.PARAMS))
    args = parser.parse_args(argv)
    cfg = load_params(args.params, StreamEvalConfig)
    metrics, sweep, _, _ = run_stream_eval(paths.EXPORT_DIR, paths.STREAM_WAV, paths.STREAM_LABELS, cfg)
    print(format_summary(metrics))
    atomic_write_json(paths.STREAM_METRICS, {"model": str(paths.EXPORT_DIR), **metrics})
    atomic_write_text(paths.STREAM_SWEEP, sweep_csv(sweep))
    return 0


if __name__ == "__main__":
    run_main(main)
