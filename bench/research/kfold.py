"""Accuracy on real speech without luck: speaker-disjoint k-fold cross-validation over every
shared real clip.

    python -m bench.research.kfold [--configs embedding/logreg ...] [--folds 5] [--salt kfold]
        [--cache DIR]

All clips of ../shared/data/speech_commands_mini (2,804; wanted words keep their label, every
other word is ``_unknown_``) go to ``--folds`` folds by a salted hash of the speaker id (the file
name before ``_nohash_``), so a speaker's clips share a fold and every clip is tested exactly
once. Per fold a classifier trains on the other folds (plus ``_silence_`` examples cut from the
background noise, as the split stage adds them) and is scored on the fold's clips. Reported per
configuration: mean accuracy over the folds, the per-fold spread (min-max and standard deviation)
and a 95% interval of the mean (t distribution over the folds), plus the pooled accuracy over all
clips.

Features are computed once per front end (and per augmentation variant) into ``--cache`` and
reused by every fold and classifier; only the classifier trains per fold. A configuration is
``<features>/<classifier>``:

- features: a registered front end (``embedding``, ``efficientword``, ``mfcc``), or several joined
  with ``+`` (concatenated flat vectors, e.g. ``embedding+efficientword``); a suffix ``:aug<N>``
  adds N augmented copies of every training clip (the featurize stage's augmentation: time shift,
  background noise), ``:tta`` scores each test clip as the mean of its scores at shifts of
  0 and +-100 ms;
- classifier: ``logreg`` (standardized flat features, L2 logistic regression), ``head`` (the
  project's ``embedding_head`` Keras model, trained as the real-speech preset trains it, fewer
  steps), ``linear`` (the project's ``linear_head``: per-feature normalization and one dense
  layer, logistic regression as a Keras model that exports to TFLite), ``seq`` (the project's
  ``embedding_conv``: 1-D convolutions over the embedding windows), ``pairseq`` (the project's
  ``word_pair_conv``, for ``embedding+efficientword`` only: ``seq`` over the speech embedding's
  windows beside ``linear``'s standardized EfficientWord-Net vector), ``pairmean`` (the project's
  ``word_pair_mean`` with 2 heads of each kind, ``presets/real-speech-mean.yaml``'s model: ``seq``
  and ``linear`` heads trained apart, their softmaxes averaged), ``ds_cnn-<padding>`` (the
  project's ``ds_cnn`` with its default blocks and ``model.ds_cnn.padding`` same, valid or causal,
  on frame features such as ``mfcc``; trained with the train stage's defaults: adam, 2,000 steps
  at 0.002 then 500 at 0.0002, batches of 100, dropout 0.3), e.g. ``mfcc:aug2/ds_cnn-valid``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import SHARED_MINI

WANTED = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
SILENCE_PER_FOLD = 60
SHIFTS_MS = (-100, 100)


def speaker_of(path: Path) -> str:
    return path.name.split("_nohash_")[0]


def fold_of(speaker: str, salt: str, folds: int) -> int:
    return int(hashlib.sha1(f"{salt}{speaker}".encode()).hexdigest(), 16) % folds


def background_noises(data: Path) -> list[np.ndarray]:
    """The folder's ``_background_noise_/*.wav`` (in name order) longer than one clip."""
    from pipeline.core.audio import read_wav
    from pipeline.core.labels import BACKGROUND_NOISE_DIR

    noises = [read_wav(p, 16000) for p in sorted((data / BACKGROUND_NOISE_DIR).glob("*.wav"))]
    return [n for n in noises if len(n) > 16000]


def dataset(data: Path, salt: str, folds: int):
    """(audio [N, 16000], labels [N], fold [N], is_silence [N], labels list)."""
    from pipeline.core.audio import fit_to_length, read_wav
    from pipeline.core.labels import BACKGROUND_NOISE_DIR, prepare_words_list

    labels = prepare_words_list(WANTED)
    paths = sorted(p for p in data.glob("*/*.wav") if p.parent.name != BACKGROUND_NOISE_DIR)
    audio = [fit_to_length(read_wav(p, 16000), 16000) for p in paths]
    y = [labels.index(p.parent.name) if p.parent.name in WANTED else 1 for p in paths]
    fold = [fold_of(speaker_of(p), salt, folds) for p in paths]
    # _silence_: background noise at a random volume (as augment_clip makes silence rows).
    noises = background_noises(data)
    rng = np.random.default_rng(7)
    for f in range(folds):
        for _ in range(SILENCE_PER_FOLD):
            noise = noises[int(rng.integers(len(noises)))]
            offset = int(rng.integers(0, len(noise) - 16000))
            audio.append(np.clip(noise[offset : offset + 16000] * rng.uniform(0, 1), -1, 1))
            y.append(0)
            fold.append(f)
    silence = np.array([False] * len(paths) + [True] * (len(audio) - len(paths)))
    return np.stack(audio).astype(np.float32), np.array(y), np.array(fold), silence, labels


def shifted(audio: np.ndarray, ms: int) -> np.ndarray:
    from pipeline.data.augment import time_shift

    return np.stack([time_shift(a, int(ms * 16)) for a in audio])


def augmented(audio: np.ndarray, silence: np.ndarray, copies: int, data: Path) -> np.ndarray:
    """``copies`` augmented versions of every clip ([copies, N, samples]), featurize's recipe."""
    from pipeline.data.augment import AugmentConfig, augment_clip, clip_rng

    cfg = AugmentConfig()
    noises = background_noises(data)
    out = np.zeros((copies, *audio.shape), np.float32)
    for c in range(copies):
        for i, clip in enumerate(audio):
            out[c, i] = (
                augment_clip(
                    clip,
                    False,
                    clip_rng(cfg.seed, "training", i, c),
                    noises,
                    True,
                    cfg.time_shift_samples(16000),
                    cfg.background_volume,
                    cfg.background_frequency,
                )
                if not silence[i]
                else clip
            )
    return out


def features_of(name: str, audio: np.ndarray, cache: Path, tag: str) -> np.ndarray:
    """Flat-or-sequence features of ``audio`` with front end ``name``, cached under ``cache``."""
    from pipeline.frontends import FeatureConfig, features_numpy

    path = cache / f"{name}_{tag}.npy"
    if path.is_file():
        return np.load(path)
    start = time.perf_counter()
    x = features_numpy(audio, FeatureConfig(preprocess=name), batch_size=512)
    print(
        f"  features {name} {tag}: {len(audio)} clips in {time.perf_counter() - start:.0f} s",
        flush=True,
    )
    np.save(path, x)
    return x


def joined(names: list[str], audio_fn, cache: Path, tag: str) -> np.ndarray:
    """The front ends' features side by side; ``embedding+efficientword`` as the
    ``embedding_efficientword`` front end joins them (its EfficientWord-Net gain included)."""
    from pipeline.frontends.word_pair import EFFICIENTWORD_GAIN

    parts = [features_of(n, audio_fn(), cache, tag) for n in names]
    if len(parts) == 1:
        return parts[0]
    if names == ["embedding", "efficientword"]:
        parts[1] = parts[1] * EFFICIENTWORD_GAIN
    return np.concatenate([p.reshape(len(p), -1) for p in parts], axis=1)


def train_logreg(x, y, seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=0.5, max_iter=300, random_state=seed)
    )
    model.fit(x.reshape(len(x), -1), y)
    return lambda z: model.predict_proba(z.reshape(len(z), -1))


def train_keras(x, y, seed, kind, labels):
    import keras
    import tensorflow as tf

    from pipeline.models import build_model
    from pipeline.models.io import with_softmax
    from pipeline.training.optim import cross_entropy as per_head

    def head_losses(loss_fn, truth, logits):
        return per_head(loss_fn, tf.reshape(tf.cast(truth, tf.int32), [-1]), logits)

    keras.utils.set_random_seed(seed)
    if kind == "head":
        shape = x.shape[1:] if x.ndim == 3 else (1, x.shape[1])
        model = build_model("embedding_head", shape, len(labels), 0.5)
    elif kind == "linear":  # the project's linear_head: logistic regression as a Keras model
        shape = x.shape[1:] if x.ndim == 3 else (1, x.shape[1])
        model = build_model("linear_head", shape, len(labels), 0.5)
    elif kind == "pairseq":  # the project's word_pair_conv (joined embedding+efficientword only)
        model = build_model("word_pair_conv", (1, int(np.prod(x.shape[1:]))), len(labels), 0.5)
    elif kind == "pairmean":  # the project's word_pair_mean, 2 heads of each kind (the preset's)
        from pipeline.models.word_pair_mean import WordPairMeanOptions

        model = build_model(
            "word_pair_mean",
            (1, int(np.prod(x.shape[1:]))),
            len(labels),
            0.5,
            WordPairMeanOptions(members=2),
        )
    else:  # seq: the project's embedding_conv, 1-D convolutions over the embedding windows
        model = build_model("embedding_conv", x.shape[1:], len(labels), 0.5)
    x = x.reshape(len(x), *model.input_shape[1:])
    steps, batch = 2000, 100
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([1500], [1e-3, 1e-4])
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    # A committee's [batch, heads, labels] logits: each head's own loss, as the train stage does.
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=lambda truth, logits: head_losses(cross_entropy, truth, logits),
    )
    epochs = max(1, round(steps * batch / len(x)))
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=True)
    scores = with_softmax(model)
    return lambda z: scores.predict(
        z.reshape(len(z), *model.input_shape[1:]), batch_size=512, verbose=0
    )


def train_ds_cnn(x, y, seed, padding, labels):
    """The project's ds_cnn as the train stage trains it by default (see the module doc)."""
    import keras

    from pipeline.models import build_model
    from pipeline.models.ds_cnn import DsCnnOptions

    keras.utils.set_random_seed(seed)
    model = build_model("ds_cnn", x.shape[1:], len(labels), 0.3, DsCnnOptions(padding=padding))
    steps, batch = 2500, 100
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([2000], [2e-3, 2e-4])
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(seed)
    for _ in range(steps):  # steps of random batches, as the train stage samples them
        index = rng.integers(0, len(x), size=batch)
        model.train_on_batch(x[index], y[index])
    softmax = keras.layers.Softmax()
    return lambda z: np.asarray(softmax(model.predict(z, batch_size=512, verbose=0)))


def run_config(config: str, data_bundle, args) -> dict:
    audio, y, fold, silence, labels = data_bundle
    feats, classifier = config.split("/")
    options = feats.split(":")
    names = options[0].split("+")
    copies = next((int(o[3:]) for o in options[1:] if o.startswith("aug")), 0)
    tta = "tta" in options[1:]
    clean = joined(names, lambda: audio, args.cache, "clean")
    aug = [
        joined(
            names,
            lambda c=c: augmented(audio, silence, copies, args.data)[c],
            args.cache,
            f"aug{c}",
        )
        for c in range(copies)
    ]
    shifts = (
        [
            joined(names, lambda ms=ms: shifted(audio, ms), args.cache, f"shift{ms}")
            for ms in SHIFTS_MS
        ]
        if tta
        else []
    )
    accs, correct = [], np.zeros(len(y), bool)
    start = time.perf_counter()
    for f in range(args.folds):
        train, test = fold != f, (fold == f) & ~silence
        x_train = np.concatenate([clean[train]] + [a[train] for a in aug])
        y_train = np.concatenate([y[train]] * (1 + len(aug)))
        if classifier == "logreg":
            predict = train_logreg(x_train, y_train, f)
        elif classifier.startswith("ds_cnn-"):
            predict = train_ds_cnn(x_train, y_train, f, classifier.split("-", 1)[1], labels)
        else:
            predict = train_keras(x_train, y_train, f, classifier, labels)
        scores = predict(clean[test])
        for s in shifts:
            scores = scores + predict(s[test])
        correct[test] = scores.argmax(1) == y[test]
        accs.append(float(correct[test].mean()))
        print(f"  [{config}] fold {f}: {100 * accs[-1]:.1f}% of {int(test.sum())}", flush=True)
    from scipy import stats

    accs_a = np.array(accs)
    half = stats.t.ppf(0.975, len(accs) - 1) * accs_a.std(ddof=1) / np.sqrt(len(accs))
    speech = ~silence
    return dict(
        config=config,
        mean=float(accs_a.mean()),
        std=float(accs_a.std(ddof=1)),
        low=float(accs_a.min()),
        high=float(accs_a.max()),
        ci95=float(half),
        pooled=float(correct[speech].mean()),
        clips=int(speech.sum()),
        folds=accs,
        seconds=time.perf_counter() - start,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configs",
        nargs="+",
        default=["embedding:aug4/seq", "embedding:aug4/head", "embedding+efficientword/logreg"],
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--salt", default="kfold")
    parser.add_argument("--data", type=Path, default=SHARED_MINI)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/kws_kfold_cache"))
    parser.add_argument("--json", type=Path, help="append each result as a JSON line")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        raise SystemExit(f"{args.data}: no such folder of real clips")
    args.cache.mkdir(parents=True, exist_ok=True)
    bundle = dataset(args.data, args.salt, args.folds)
    sizes = [int(((bundle[2] == f) & ~bundle[3]).sum()) for f in range(args.folds)]
    print(
        f"{len(bundle[0])} clips ({int((~bundle[3]).sum())} speech), fold sizes {sizes}", flush=True
    )
    rows = []
    for config in args.configs:
        rows.append(run_config(config, bundle, args))
        if args.json:
            with args.json.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(rows[-1]) + "\n")
    header = (
        f"{'configuration':<40} {'mean':>6} {'95% CI':>7} {'min':>6} {'max':>6} {'sd':>5} "
        f"{'pooled':>7} {'s':>5}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        print(
            f"{r['config']:<40} {100 * r['mean']:>5.1f}% {100 * r['ci95']:>6.1f} "
            f"{100 * r['low']:>5.1f}% {100 * r['high']:>5.1f}% {100 * r['std']:>5.1f} "
            f"{100 * r['pooled']:>6.1f}% {r['seconds']:>5.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
