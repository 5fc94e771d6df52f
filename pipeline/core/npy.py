"""Append-only ``.npy`` files: arrays written in chunks, never held whole in memory.

The clip store (``data/raw/*/audio.npy``) and the features (``data/features/<split>/x.npy``) are
gigabytes at the size of the real Speech Commands. :class:`NpyWriter` writes the standard ``.npy``
header for an empty first axis, appends rows chunk by chunk with plain writes (no memory map, so
the writer's resident memory stays one chunk), and on :meth:`NpyWriter.close` rewrites the header
in place with the final row count. numpy pads a version 1.0 header so that the first axis can grow
to 21 digits without changing its length, so the rewrite never moves the data. The bytes depend
only on the rows appended (no timestamps), and the sha256 of the data is computed on the way.

Readers open the result with ``np.load(path, mmap_mode="r")``. A write that fails (a full disk)
is a one-line StageError naming the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from pathlib import Path

import numpy as np

from pipeline.core.errors import StageError
from pipeline.core.fs import write_error


def _header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer,
        {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape},
    )
    return buffer.getvalue()


class NpyWriter:
    """Write ``path`` as a C-order ``.npy`` of ``dtype`` with rows of ``row_shape``, chunk by chunk.

    ``append`` takes ``[n, *row_shape]`` arrays (a 1-D file takes flat arrays); ``close`` fixes the
    header and returns the sha256 of the data. Use it as a context manager inside an
    ``atomic_dir`` (a failure leaves a file the atomic folder throws away).
    """

    def __init__(self, path, dtype, row_shape: tuple[int, ...] = ()):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(int(d) for d in row_shape)
        self.rows = 0
        self._header = _header(self.dtype, (0, *self.row_shape))
        self._digest = hashlib.sha256()
        try:
            self._file = open(self.path, "wb")  # noqa: SIM115 (closed by close or __exit__)
        except OSError as exc:
            raise write_error(self.path, exc) from None
        self._write(self._header)

    def _write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            self._abandon()
            raise write_error(self.path, exc) from None

    def _abandon(self) -> None:
        """Close the file after a failure; what it cannot flush is lost (the caller discards it)."""
        with contextlib.suppress(OSError):
            self._file.close()

    def append(self, array: np.ndarray) -> None:
        array = np.asarray(array)
        if tuple(array.shape[1:]) != self.row_shape:
            raise ValueError(
                f"{self.path}: rows of shape {array.shape[1:]}; expected {self.row_shape}"
            )
        data = np.ascontiguousarray(array, dtype=self.dtype).tobytes()
        self._write(data)
        self._digest.update(data)
        self.rows += len(array)

    def close(self) -> str:
        """Rewrite the header with the row count; return the sha256 of the data (header excluded:
        with the dtype and shape, which the header holds, it identifies the contents)."""
        if self._file.closed:
            raise ValueError(f"{self.path}: already closed")
        header = _header(self.dtype, (self.rows, *self.row_shape))
        if len(header) != len(
            self._header
        ):  # numpy's padding makes this impossible below 10^21 rows
            raise StageError(
                f"{self.path}: the .npy header grew from {len(self._header)} to {len(header)} bytes"
            )
        try:
            self._file.seek(0)
            self._file.write(header)
            self._file.close()
        except OSError as exc:
            self._abandon()
            raise write_error(self.path, exc) from None
        return self._digest.hexdigest()

    def __enter__(self) -> NpyWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if not self._file.closed:
            if kind is None:
                self.close()
            else:
                self._abandon()
