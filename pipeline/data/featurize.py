"""The features of every manifest row, with precomputed augmentation (the featurize stage).

Reads ``data/split/{train,validation,test}.csv`` and the clips (plus ``_background_noise_``),
builds each row's audio (silence rows from noise), and writes ``data/features/{train,validation,
test}.npz`` (``x`` float32 ``[N, frames, bins]``, ``y`` int32 ``[N]``), ``labels.txt`` and
``meta.json``. Training rows get ``augment.copies`` augmented copies (0: one un-augmented copy),
computed once here and cached by DVC, so the 2-core training loop only reads arrays.

The npz files are written by ``pipeline.data.feature_store.save_npz`` (byte-identical reruns).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pipeline.core.audio import fit_to_length, read_wav
from pipeline.core.errors import StageError
from pipeline.core.fs import atomic_dir, atomic_write_json
from pipeline.core.labels import (
    BACKGROUND_NOISE_DIR,
    SILENCE_LABEL,
    read_labels,
    write_labels,
)
from pipeline.data.augment import AugmentConfig, augment_clip, clip_rng, load_background
from pipeline.data.feature_store import FEATURE_NAMES, save_npz
from pipeline.data.manifest import MANIFEST_NAMES, SPLITS, Row, read_manifest
from pipeline.frontends import FeatureConfig, features_numpy

log = logging.getLogger(__name__)

CHUNK = 512  # clips per feature batch: bounds memory, keeps TF ops batched


def _clip_audio(row: Row, base_dir: Path, desired: int, sample_rate: int) -> np.ndarray:
    if row.label == SILENCE_LABEL and not row.path:
        return np.zeros(desired, np.float32)
    # Split has already vetted every clip (and its rate, resampling only when asked to).
    return fit_to_length(read_wav(base_dir / row.path, sample_rate, resample=True), desired)


def featurize_split(
    rows: list[Row],
    split: str,
    fcfg: FeatureConfig,
    acfg: AugmentConfig,
    noises: list[np.ndarray],
    base_dir: Path = Path("."),
    desc: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of one split's rows (training rows repeated per augmented copy)."""
    training = split == "training" and acfg.copies > 0
    copies = acfg.copies if training else 1
    shift = acfg.time_shift_samples(fcfg.sample_rate)
    desired = fcfg.desired_samples
    n = len(rows) * copies
    x = np.zeros((n, *fcfg.feature_shape), np.float32)
    y = np.zeros(n, np.int32)
    with tqdm(total=n, desc=desc or f"featurize {split}", unit="clip", leave=False) as bar:
        for start in range(0, len(rows), max(1, CHUNK // copies)):
            chunk = rows[start : start + max(1, CHUNK // copies)]
            audio = np.zeros((len(chunk) * copies, desired), np.float32)
            for i, row in enumerate(chunk):
                clip = _clip_audio(row, base_dir, desired, fcfg.sample_rate)
                # Generated silence has no path; the official test set's _silence_ clips are real
                # recordings and are used as they are.
                silence = row.label == SILENCE_LABEL and not row.path
                for c in range(copies):
                    rng = clip_rng(acfg.seed, split, start + i, c)
                    audio[i * copies + c] = augment_clip(
                        clip, silence, rng, noises, training, shift,
                        acfg.background_volume, acfg.background_frequency,
                    )
                    y[(start + i) * copies + c] = row.label_index
            x[start * copies : start * copies + len(audio)] = features_numpy(audio, fcfg)
            bar.update(len(audio))
    return x, y


def featurize(
    split_dir,
    dataset_dir,
    out_dir,
    features: FeatureConfig = FeatureConfig(),
    augment: AugmentConfig = AugmentConfig(),
    base_dir=".",
) -> dict[str, Any]:
    """Write the three npz files, labels.txt and meta.json into ``out_dir`` atomically.

    Manifest paths are relative to ``base_dir`` (the repository root for the stage).
    """
    split_dir, base_dir = Path(split_dir), Path(base_dir)
    labels_path = split_dir / "labels.txt"
    if not labels_path.is_file():
        raise FileNotFoundError(f"{labels_path}: not found (run the split stage first)")
    labels = read_labels(labels_path)
    manifests = {FEATURE_NAMES[split]: (split, read_manifest(split_dir / MANIFEST_NAMES[split]))
                 for split in SPLITS}
    for out, (_, rows) in manifests.items():
        for r in rows:
            if not 0 <= r.label_index < len(labels) or labels[r.label_index] != r.label:
                raise StageError(
                    f"{split_dir / out}: label {r.label!r} index {r.label_index} does not "
                    f"match {labels_path}"
                )
    noises = load_background(Path(dataset_dir) / BACKGROUND_NOISE_DIR, features.sample_rate,
                             features.desired_samples)
    needs_noise = any(r.label == SILENCE_LABEL for _, rows in manifests.values() for r in rows)
    if needs_noise and not noises:
        raise StageError(
            f"{Path(dataset_dir) / BACKGROUND_NOISE_DIR}: no background noise WAVs, but the "
            "manifests have silence rows (set split.silence_percentage: 0 or add noise files)"
        )
    if not noises and augment.background_frequency > 0:
        log.warning("no background noise files; training clips get no background mixing")
    meta: dict[str, Any] = {
        "features": features.to_dict(),
        "feature_shape": list(features.feature_shape),
        "desired_samples": features.desired_samples,
        "augment": augment.to_dict(),
        "labels": labels,
        "noise_files": sorted(p.name for p in (Path(dataset_dir) / BACKGROUND_NOISE_DIR).glob("*.wav")),
        "counts": {},
    }
    with atomic_dir(out_dir) as tmp:
        for out, (split, rows) in manifests.items():
            x, y = featurize_split(rows, split, features, augment, noises, base_dir, f"featurize {out}")
            save_npz(tmp / f"{out}.npz", x=x, y=y)
            meta["counts"][out] = {"rows": len(rows), "examples": int(len(y))}
            log.info("%s: %d rows -> x %s", out, len(rows), x.shape)
        write_labels(tmp / "labels.txt", labels)
        atomic_write_json(tmp / "meta.json", meta)
    return meta
