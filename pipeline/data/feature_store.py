"""The featurize stage's arrays on disk: per split a folder ``<split>/`` with ``x.npy`` (float32
``[N, frames, bins]``) and ``y.npy`` (int32 ``[N]``).

Written chunk by chunk by featurize (``pipeline.core.npy.NpyWriter``: byte-identical reruns, flat
memory); read by :func:`read_features`, which maps ``x`` (``np.load(..., mmap_mode="r")``) rather
than loading it, so training and evaluation hold only the rows they index, and checks what they
rely on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.errors import StageError

# Split name (manifest) -> features folder.
FEATURE_NAMES = {"training": "train", "validation": "validation", "testing": "test"}
X_FILE = "x.npy"
Y_FILE = "y.npy"


def feature_files(features_dir, name: str) -> tuple[Path, Path]:
    """The ``x.npy`` and ``y.npy`` of split ``name`` (train, validation, test)."""
    folder = Path(features_dir) / name
    return folder / X_FILE, folder / Y_FILE


def read_features(features_dir, name: str, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``name``'s features (a read-only memory map) and labels, checked.

    ``x[index]`` with an index array reads just those rows into memory.
    """
    x_path, y_path = feature_files(features_dir, name)
    for path in (x_path, y_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found (run the featurize stage first)")
    try:
        x = np.load(x_path, mmap_mode="r")
        y = np.load(y_path)
    except (ValueError, OSError) as exc:
        raise StageError(
            f"{x_path.parent}: not a features folder with x.npy and y.npy ({exc})"
        ) from None
    if x.dtype != np.float32 or x.ndim != 3:
        raise StageError(
            f"{x_path}: expected float32 features [N, frames, bins], got {x.dtype} {x.shape}"
        )
    if y.ndim != 1 or len(x) != len(y):
        raise StageError(
            f"{x_path.parent}: expected x [N, frames, bins] and y [N], "
            f"got x {x.shape} and y {y.shape}"
        )
    if len(y) == 0:
        raise StageError(f"{x_path.parent}: holds no examples")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= num_labels:
        raise StageError(
            f"{y_path}: labels must be integers in [0, {num_labels}), "
            f"got {y.dtype} in [{y.min()}, {y.max()}]"
        )
    return x, y.astype(np.int32, copy=False)


def write_features(features_dir, name: str, x: np.ndarray, y: np.ndarray) -> dict[str, str]:
    """Write split ``name``'s arrays whole (featurize streams them instead); their data sha256."""
    from pipeline.core.npy import NpyWriter

    x_path, y_path = feature_files(features_dir, name)
    x_path.parent.mkdir(parents=True, exist_ok=True)
    digests = {}
    for path, array in ((x_path, np.asarray(x)), (y_path, np.asarray(y))):
        with NpyWriter(path, array.dtype, array.shape[1:]) as writer:
            writer.append(array)
            digests[path.stem] = writer.close()
    return digests
