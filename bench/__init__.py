"""The project's benchmarks, each a module run from the repository root as
``python -m bench.<name>`` (``python -m bench.run_all``, or ``make bench``, runs the speed
benchmarks in turn). Modules here measure speed and size; ``bench.research`` holds the accuracy
studies behind the presets' choices (``python -m bench.research.<name>``). Shared helpers:
``bench.common``.

TensorFlow's C++ info logs are quieted here, before any benchmark imports TensorFlow (a package's
``__init__`` runs before ``python -m`` runs its module), unless the caller set the level.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
