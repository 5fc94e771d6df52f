"""The featurize stage's arrays on disk: one ``<split>.npz`` (x, y) per split.

Written by :func:`save_npz` (uncompressed, fixed zip timestamps) because ``np.savez`` stamps each
member with the wall-clock time and so never repeats its bytes; read by :func:`read_features`,
which checks what training and evaluation rely on.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from pipeline.core.errors import StageError

# Split name (manifest) -> features file stem.
FEATURE_NAMES = {"training": "train", "validation": "validation", "testing": "test"}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Like ``np.savez`` (uncompressed, readable by ``np.load``) but byte-identical on rerun."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            zf.writestr(info, buffer.getvalue(), compress_type=zipfile.ZIP_STORED)


def read_features(features_dir, name: str, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Read ``<name>.npz`` and check it holds features and in-range integer labels."""
    path = Path(features_dir) / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (run the featurize stage first)")
    try:
        with np.load(path) as data:
            x, y = data["x"], data["y"]
    except (KeyError, ValueError, OSError) as exc:
        raise StageError(f"{path}: not a features file with arrays x and y ({exc})") from None
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise StageError(f"{path}: expected x [N, frames, bins] and y [N], got x {x.shape} and y {y.shape}")
    if len(y) == 0:
        raise StageError(f"{path}: holds no examples")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= num_labels:
        raise StageError(f"{path}: labels must be integers in [0, {num_labels}), got {y.dtype} in [{y.min()}, {y.max()}]")
    return x.astype(np.float32, copy=False), y.astype(np.int32, copy=False)
