"""Benchmark: augmentation on the fly (tf.data) vs precomputed copies (the featurize stage).

Prints a markdown table of examples per second delivered to a training loop and the one-off
featurize time, on a stand-in for the default embedded data set (48 speakers x 35 words of
tone clips from tests/conftest.make_dataset; timing does not depend on what the clips say), plus
the throughput of each feature front end.

    python -m bench.augmentation            # defaults: 48 speakers, 35 words, 4 copies
    python -m bench.augmentation --speakers 8 --examples 1000   # quick
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from pipeline.core.audio import fit_to_length, read_wav
from pipeline.core.labels import ALL_WORDS, prepare_words_list
from pipeline.data.augment import AugmentConfig, load_background
from pipeline.data.featurize import featurize
from pipeline.frontends import FeatureConfig, compute_features, features_numpy

WANTED = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
COLUMNS = ["path", "word", "label", "label_index", "speaker", "split"]


def write_manifests(root: Path, dataset: Path, words, speakers: int) -> Path:
    """Speaker-disjoint 80/10/10 manifests with 10% silence and 10% unknown rows, as split does."""
    from tests.conftest import speaker_id

    labels = prepare_words_list(WANTED)
    split_dir = root / "split"
    split_dir.mkdir(parents=True)
    (split_dir / "labels.txt").write_text(
        "".join(f"{label}\n" for label in labels), encoding="utf-8"
    )
    rng = np.random.default_rng(0)
    for name, split, lo, hi in (
        ("train.csv", "training", 0.2, 1.0),
        ("validation.csv", "validation", 0.0, 0.1),
        ("test.csv", "testing", 0.1, 0.2),
    ):
        chosen = [s for s in range(speakers) if lo <= (s % 10) / 10 < hi]
        wanted, unknown = [], []
        for s in chosen:
            for w in words:
                rel = (dataset / w / f"{speaker_id(s)}_nohash_0.wav").relative_to(root).as_posix()
                label = w if w in WANTED else "_unknown_"
                row = [rel, w, label, labels.index(label), speaker_id(s), split]
                (wanted if w in WANTED else unknown).append(row)
        rng.shuffle(unknown)
        extra = int(np.ceil(len(wanted) * 0.1))
        rows = wanted + unknown[:extra] + [["", "_silence_", "_silence_", 0, "", split]] * extra
        with open(split_dir / name, "w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows([COLUMNS, *rows])
    return split_dir


def onthefly_dataset(
    paths,
    labels,
    silence,
    noises,
    fcfg: FeatureConfig,
    acfg: AugmentConfig,
    batch_size: int,
    seed: int = 0,
):
    """The original's per-step work as a tf.data pipeline: decode, shift, mix, features."""
    desired = fcfg.desired_samples
    shift = acfg.time_shift_samples(fcfg.sample_rate)
    noise = tf.constant(np.stack([n[: min(len(n) for n in noises)] for n in noises]))
    noise_len = int(noise.shape[1])

    def load(path, label, is_silence, seeds):
        s = tf.random.experimental.stateless_split(seeds, 6)
        audio = tf.audio.decode_wav(
            tf.io.read_file(path), desired_channels=1, desired_samples=desired
        ).audio[:, 0]
        audio = audio * tf.cast(tf.logical_not(is_silence), tf.float32)
        amount = tf.random.stateless_uniform([], s[0], -shift, shift, tf.int32) if shift > 0 else 0
        padded = tf.pad(audio, [[tf.maximum(amount, 0), tf.maximum(-amount, 0)]])
        audio = padded[tf.maximum(-amount, 0) : tf.maximum(-amount, 0) + desired]
        which = tf.random.stateless_uniform([], s[1], 0, len(noises), tf.int32)
        offset = tf.random.stateless_uniform([], s[2], 0, noise_len - desired, tf.int32)
        segment = noise[which, offset : offset + desired]
        use = tf.random.stateless_uniform([], s[3]) < acfg.background_frequency
        volume = tf.where(
            is_silence,
            tf.random.stateless_uniform([], s[4]),
            tf.where(use, tf.random.stateless_uniform([], s[5], 0, acfg.background_volume), 0.0),
        )
        return tf.clip_by_value(audio + segment * volume, -1.0, 1.0), label

    n = len(paths)
    index = tf.data.Dataset.random(seed=seed).map(lambda r: r % n)
    seeds = tf.data.Dataset.random(seed=seed + 1).batch(2)
    table = (tf.constant(paths), tf.constant(labels, tf.int32), tf.constant(silence))
    ds = tf.data.Dataset.zip((index, seeds)).map(
        lambda i, sd: load(table[0][i], table[1][i], table[2][i], sd),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    ds = ds.batch(batch_size).map(
        lambda a, y: (compute_features(a, fcfg), y), num_parallel_calls=tf.data.AUTOTUNE
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def precomputed_dataset(x, y, batch_size: int, seed: int = 0):
    """What training reads after featurize: sampled batches from in-memory arrays."""
    return (
        tf.data.Dataset.from_tensor_slices((x, y))
        .repeat()
        .shuffle(len(y), seed=seed)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def examples_per_second(ds, examples: int, batch_size: int) -> float:
    it = iter(ds)
    next(it)  # warm up (tracing, first file reads)
    steps = max(1, examples // batch_size)
    start = time.perf_counter()
    for _ in range(steps):
        next(it)
    return steps * batch_size / (time.perf_counter() - start)


def front_end_rates(clips: np.ndarray) -> list[tuple[str, float]]:
    rates = []
    for mode in ("mfcc", "average", "micro", "embedding"):
        cfg = FeatureConfig(preprocess=mode)
        sample = clips if mode != "embedding" else clips[: min(len(clips), 100)]
        features_numpy(sample[:2], cfg)  # warm up
        start = time.perf_counter()
        features_numpy(sample, cfg)
        rates.append((mode, len(sample) / (time.perf_counter() - start)))
    return rates


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", type=int, default=48)
    parser.add_argument("--words", type=int, default=35, help="how many of the 35 words")
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--examples", type=int, default=3000, help="examples timed per pipeline")
    args = parser.parse_args(argv)

    from pipeline.data.clip_store import ClipStore
    from tests.conftest import make_store

    words = list(dict.fromkeys(WANTED + ALL_WORDS))[: max(args.words, len(WANTED))]
    fcfg, acfg = FeatureConfig(), AugmentConfig(copies=args.copies)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        dataset = make_store(
            root / "dataset", words=words, speakers=args.speakers, noise_seconds=60
        )
        gen_s = time.perf_counter() - t0
        split_dir = write_manifests(root, dataset, words, args.speakers)

        t0 = time.perf_counter()
        meta = featurize(split_dir, dataset.parent, root / "features", fcfg, acfg, base_dir=root)
        featurize_s = time.perf_counter() - t0
        x, y = (
            np.load(root / "features" / "train" / "x.npy"),
            np.load(root / "features" / "train" / "y.npy"),
        )

        with open(split_dir / "train.csv", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        some_clip = next(r["path"] for r in rows if r["path"])
        paths = [str(root / (r["path"] or some_clip)) for r in rows]
        labels = [int(r["label_index"]) for r in rows]
        silence = [r["label"] == "_silence_" for r in rows]
        with ClipStore(dataset) as store:
            noises, _ = load_background(store, 16000, fcfg.desired_samples)

        fly = examples_per_second(
            onthefly_dataset(paths, labels, silence, noises, fcfg, acfg, args.batch_size),
            args.examples,
            args.batch_size,
        )
        pre = examples_per_second(
            precomputed_dataset(x, y, args.batch_size), args.examples * 10, args.batch_size
        )
        clips = np.stack([fit_to_length(read_wav(p, 16000), 16000) for p in paths[:300]])
        rates = front_end_rates(clips)

    counts = meta["counts"]
    print(
        f"\nStand-in data set: {args.speakers} speakers x {len(words)} words "
        f"(generated in {gen_s:.1f} s); rows train/validation/test = "
        f"{counts['train']['rows']}/{counts['validation']['rows']}/{counts['test']['rows']}, "
        f"{args.copies} copies -> {counts['train']['examples']} training examples; "
        f"{os.cpu_count()} CPU cores\n"
    )
    print("| pipeline | examples/s delivered to training | one-off cost |")
    print("| --- | ---: | --- |")
    print(f"| on the fly (tf.data: decode, shift, mix, mfcc per step) | {fly:,.0f} | none |")
    featurized = sum(c["examples"] for c in counts.values())
    print(
        f"| precomputed copies (featurize, then arrays) | {pre:,.0f} "
        f"| featurize {featurize_s:.1f} s ({featurized / featurize_s:,.0f} examples/s) |"
    )
    print("\n| front end | clips/s (features_numpy, 1 s clips) |")
    print("| --- | ---: |")
    for mode, rate in rates:
        print(f"| {mode} | {rate:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
