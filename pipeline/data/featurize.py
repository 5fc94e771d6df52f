"""The features of every manifest row, with precomputed augmentation (the featurize stage).

Reads ``data/split/{train,validation,test}.csv`` and the clips they name from the clip stores
(``data/raw/dataset/``, ``data/raw/official_test/``; background noise from the data set's
``_background_noise_/`` clips), builds each row's audio (silence rows from noise), and writes per
split ``data/features/<split>/x.npy`` (float32 ``[N, frames, bins]``) and ``y.npy`` (int32 ``[N]``),
plus ``labels.txt`` and ``meta.json``. Training rows get ``augment.copies`` augmented copies (0: one
un-augmented copy), computed once here and cached by DVC, so the 2-core training loop only reads
arrays. With ``stream_windows.streams`` > 0 the training split also gets, after its rows, the
windows (``data/stream_windows.py``) cut from recordings synthesized here from the training split
(``data/stream_synthesis.py``, with the ``stream`` section's makeup); off, the outputs are exactly
those without it.

Memory stays flat in the data size: rows are featurized ``CHUNK`` examples at a time and each chunk
is appended to ``x.npy`` (``pipeline.core.npy.NpyWriter``) before the next is computed; readers map
the files (``feature_store.read_features``). Reruns give byte-identical files.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pipeline.core.audio import fit_to_length
from pipeline.core.errors import StageError
from pipeline.core.fs import atomic_dir, atomic_write_json
from pipeline.core.labels import (
    BACKGROUND_NOISE_DIR,
    SILENCE_LABEL,
    read_labels,
    write_labels,
)
from pipeline.core.npy import NpyWriter
from pipeline.data.augment import AugmentConfig, augment_clip, clip_rng, load_background
from pipeline.data.clip_store import ClipReader, ClipStore
from pipeline.data.feature_store import FEATURE_NAMES, X_FILE, Y_FILE
from pipeline.data.manifest import MANIFEST_NAMES, SPLITS, Row, read_manifest
from pipeline.data.stream_synthesis import StreamConfig, split_streams
from pipeline.data.stream_windows import (
    StreamWindowsConfig,
    stream_examples,
    stride_samples,
    window_rng,
)
from pipeline.frontends import FeatureConfig, features_numpy

log = logging.getLogger(__name__)

CHUNK = 512  # clips per feature batch: bounds memory, keeps TF ops batched


def _clip_audio(row: Row, clips: ClipReader, desired: int) -> np.ndarray:
    if row.label == SILENCE_LABEL and not row.path:
        return np.zeros(desired, np.float32)
    # Download has already vetted every clip (and its rate, resampling only when asked to).
    return fit_to_length(clips.read(row.path), desired)


def featurize_split(
    rows: list[Row],
    split: str,
    fcfg: FeatureConfig,
    acfg: AugmentConfig,
    noises: list[np.ndarray],
    clips: ClipReader,
    out_dir: Path,
    desc: str = "",
    extra: Iterable[tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Write one split's ``x.npy`` and ``y.npy`` into ``out_dir`` (training rows repeated per
    augmented copy), a chunk at a time; return counts and the sha256 of each file's data.
    ``extra`` (stream windows): more ``(x, y)`` examples appended after the rows."""
    training = split == "training" and acfg.copies > 0
    copies = acfg.copies if training else 1
    shift = acfg.time_shift_samples(fcfg.sample_rate)
    desired = fcfg.desired_samples
    n = len(rows) * copies
    y = np.zeros(n, np.int32)
    step = max(1, CHUNK // copies)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        NpyWriter(out_dir / X_FILE, "<f4", fcfg.feature_shape) as x_file,
        tqdm(total=n, desc=desc or f"featurize {split}", unit="clip", leave=False) as bar,
    ):
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            audio = np.zeros((len(chunk) * copies, desired), np.float32)
            for i, row in enumerate(chunk):
                clip = _clip_audio(row, clips, desired)
                # Generated silence has no path; the official test set's _silence_ clips are real
                # recordings and are used as they are.
                silence = row.label == SILENCE_LABEL and not row.path
                for c in range(copies):
                    rng = clip_rng(acfg.seed, split, start + i, c)
                    audio[i * copies + c] = augment_clip(
                        clip,
                        silence,
                        rng,
                        noises,
                        training,
                        shift,
                        acfg.background_volume,
                        acfg.background_frequency,
                        acfg.foreground_gain_db,
                    )
                    y[(start + i) * copies + c] = row.label_index
            x_file.append(features_numpy(audio, fcfg))
            bar.update(len(audio))
        extra_y = []
        for x_more, y_more in extra or ():
            x_file.append(np.asarray(x_more, np.float32))
            extra_y.append(np.asarray(y_more, np.int32))
        x_sha = x_file.close()
    with NpyWriter(out_dir / Y_FILE, "<i4") as y_file:
        y_file.append(y)
        for y_more in extra_y:
            y_file.append(y_more)
        y_sha = y_file.close()
    counts = {
        "rows": len(rows),
        "examples": n + sum(len(v) for v in extra_y),
        "x_sha256": x_sha,
        "y_sha256": y_sha,
    }
    if extra is not None:
        counts["stream_windows"] = sum(len(v) for v in extra_y)
    return counts


def training_streams(
    split_dir: Path,
    dataset: Path,
    stream_windows: StreamWindowsConfig,
    stream: StreamConfig,
    sample_rate: int,
    base_dir: Path,
) -> Iterator[tuple[np.ndarray, list]]:
    """The ``stream_windows.streams`` recordings of the training split's clips over the noise of
    the store ``dataset``, each ``(audio, [(label, time_ms), ...])``, synthesized one at a time as
    they are iterated (``split_streams``; nothing runs before)."""
    return split_streams(
        split_dir / MANIFEST_NAMES["training"],
        split_dir / "labels.txt",
        dataset.absolute(),  # the store featurize reads its noise from, whatever base_dir is
        stream_windows.stream_settings(stream),
        sample_rate,
        base_dir=base_dir,
    )


def featurize(
    split_dir,
    raw_dir,
    out_dir,
    features: FeatureConfig | None = None,
    augment: AugmentConfig | None = None,
    base_dir=".",
    stream_windows: StreamWindowsConfig | None = None,
    stream: StreamConfig | None = None,
) -> dict[str, Any]:
    """Write the features of the three splits, labels.txt and meta.json into ``out_dir`` atomically.

    Manifest paths are relative to ``base_dir`` (the repository root for the stage); background
    noise comes from the store ``raw_dir/dataset``. With ``stream_windows.streams`` > 0, that many
    recordings are synthesized from the TRAINING split's clips over that noise
    (:func:`training_streams`, the ``stream`` section's makeup) and their windows
    (``data/stream_windows.py``) are added to the training split. A section left out (None)
    takes its defaults.
    """
    features = FeatureConfig() if features is None else features
    augment = AugmentConfig() if augment is None else augment
    stream_windows = StreamWindowsConfig() if stream_windows is None else stream_windows
    stream = StreamConfig() if stream is None else stream
    if stream_windows.streams:
        stride_samples(stream_windows, features)  # a ParamError before any work
    split_dir, base_dir = Path(split_dir), Path(base_dir)
    labels_path = split_dir / "labels.txt"
    if not labels_path.is_file():
        raise FileNotFoundError(f"{labels_path}: not found (run the split stage first)")
    labels = read_labels(labels_path)
    manifests = {
        FEATURE_NAMES[split]: (split, read_manifest(split_dir / MANIFEST_NAMES[split]))
        for split in SPLITS
    }
    for out, (_, rows) in manifests.items():
        for r in rows:
            if not 0 <= r.label_index < len(labels) or labels[r.label_index] != r.label:
                raise StageError(
                    f"{split_dir / out}: label {r.label!r} index {r.label_index} does not "
                    f"match {labels_path}"
                )
    dataset = Path(raw_dir) / "dataset"
    streams = training_streams(
        split_dir, dataset, stream_windows, stream, features.sample_rate, base_dir
    )
    with ClipStore(dataset) as store:
        noises, noise_names = load_background(store, features.sample_rate, features.desired_samples)
    needs_noise = any(r.label == SILENCE_LABEL for _, rows in manifests.values() for r in rows)
    if needs_noise and not noises:
        raise StageError(
            f"{dataset}: no {BACKGROUND_NOISE_DIR}/ clips, but the manifests have silence rows "
            "(set split.silence_percentage: 0 or add noise files)"
        )
    if not noises and augment.background_frequency > 0:
        log.warning("no background noise files; training clips get no background mixing")
    meta: dict[str, Any] = {
        "features": features.to_dict(),
        "feature_shape": list(features.feature_shape),
        "desired_samples": features.desired_samples,
        "augment": augment.to_dict(),
        "labels": labels,
        "noise_files": noise_names,
        "counts": {},
    }
    if stream_windows.streams:
        meta["stream_windows"] = stream_windows.to_dict()

    def windows():
        with tqdm(
            total=stream_windows.streams, desc="stream windows", unit="stream", leave=False
        ) as bar:
            for k, (recording, truth) in enumerate(streams):
                if k >= stream_windows.streams:
                    break
                yield stream_examples(
                    recording,
                    truth,
                    labels,
                    features,
                    stream_windows,
                    window_rng(stream_windows, k),
                )
                bar.update(1)

    with atomic_dir(out_dir) as tmp, ClipReader(base_dir) as clips:
        for out, (split, rows) in manifests.items():
            extra = windows() if split == "training" and stream_windows.streams else None
            meta["counts"][out] = featurize_split(
                rows, split, features, augment, noises, clips, tmp / out, f"featurize {out}", extra
            )
            log.info(
                "%s: %d rows -> %d examples of %s",
                out,
                len(rows),
                meta["counts"][out]["examples"],
                features.feature_shape,
            )
        write_labels(tmp / "labels.txt", labels)
        atomic_write_json(tmp / "meta.json", meta)
    return meta
