"""Training placement (CPU / GPU / MirroredStrategy), mixed precision and tf.data online
augmentation.

No GPU is needed: MirroredStrategy runs for real over two logical CPU devices in a subprocess, and
the placement choice is tested on device-name lists.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pipeline.core.errors import StageError
from pipeline.data.feature_store import read_features
from pipeline.training.devices import choose_placement
from pipeline.training.precision import policy_name
from tests.test_train import REPO_ROOT, make_features, model_weights, run_train


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def test_placement_follows_the_gpus_tensorflow_sees():
    assert choose_placement([]).kind == "cpu" and choose_placement([]).replicas == 1
    one = choose_placement(["/device:GPU:0"])
    assert (one.kind, one.replicas, one.on_gpu) == ("gpu", 1, True)
    several = choose_placement(["/device:GPU:0", "/device:GPU:1", "/device:GPU:2"])
    assert (several.kind, several.replicas) == ("mirrored", 3)
    assert "MirroredStrategy over 3 devices" in several.describe()


def test_mixed_precision_policy_is_float16_on_a_gpu_and_bfloat16_on_a_cpu():
    assert policy_name(False, on_gpu=True) == "float32"
    assert policy_name(True, on_gpu=True) == "mixed_float16"
    assert policy_name(True, on_gpu=False) == "mixed_bfloat16"


def test_online_augmentation_is_stateless_seeded_and_changes_the_examples():
    from pipeline.training.online_augment import augment_batch, batch_indices

    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 30, 12)).astype(np.float32)
    a = augment_batch(x, 37, 5, shift_frames=4).numpy()
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, augment_batch(x, 37, 5, shift_frames=4).numpy())
    assert not np.array_equal(a, augment_batch(x, 37, 6, shift_frames=4).numpy())  # another step
    assert not np.array_equal(a, augment_batch(x, 38, 5, shift_frames=4).numpy())  # another seed
    changed = np.any(a != x, axis=(1, 2))
    assert changed.mean() > 0.5
    # Every value is either an input value (shifted) or the example's mean (padding and masks).
    means = x.mean(axis=(1, 2))
    for i in range(len(x)):
        is_mean = np.isclose(a[i], means[i], rtol=0, atol=1e-5)
        assert np.all(np.isin(a[i], x[i]) | is_mean)
    # Without a shift, frames stay in place: every unmasked value equals the input.
    unshifted = augment_batch(x, 37, 5, shift_frames=0).numpy()
    kept = ~np.isclose(unshifted, means[:, None, None], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(unshifted[kept], x[kept])
    assert kept.mean() < 1.0

    first = batch_indices(37, 5, 1000, 64).numpy()
    np.testing.assert_array_equal(first, batch_indices(37, 5, 1000, 64).numpy())
    assert first.min() >= 0 and first.max() < 1000
    assert not np.array_equal(first, batch_indices(37, 6, 1000, 64).numpy())


@pytest.mark.slow
def test_online_augmentation_trains_reproducibly_and_resumes(tmp_path):
    make_features(tmp_path / "a/data/features", noise=0.5)
    make_features(tmp_path / "b/data/features", noise=0.5)
    first = run_train(tmp_path / "a", online_augment=True, online_time_shift_frames=3)
    assert first["validation_accuracy"] >= 0.9
    first_model = md5(tmp_path / "a/models/keras/model.keras")
    again = run_train(tmp_path / "b", online_augment=True, online_time_shift_frames=3)
    assert md5(tmp_path / "b/models/keras/model.keras") == first_model
    assert again["validation_accuracy"] == first["validation_accuracy"]
    plain = run_train(tmp_path / "b")  # the default sampling gives other weights
    assert plain["resumed_from_step"] == 0
    assert md5(tmp_path / "b/models/keras/model.keras") != first_model
    # A run stopped at step 20 and resumed ends where an uninterrupted one does: a step's batch
    # depends only on (seed, step), not on how far tf.data had prefetched.
    for path in (tmp_path / "a/models/checkpoints").iterdir():
        if "00000020" not in path.name:
            path.unlink()
    resumed = run_train(tmp_path / "a", online_augment=True, online_time_shift_frames=3)
    assert resumed["resumed_from_step"] == 20
    assert md5(tmp_path / "a/models/keras/model.keras") == first_model


@pytest.mark.slow
def test_mixed_precision_trains_on_the_cpu_and_saves_a_float32_model(tmp_path):
    make_features(tmp_path / "data/features", noise=0.5)
    metrics = run_train(tmp_path, mixed_precision=True)
    assert metrics["dtype_policy"] == "mixed_bfloat16" and metrics["validation_accuracy"] >= 0.9
    from pipeline.models.io import load_model_file

    model = load_model_file(tmp_path / "models/keras/model.keras")
    assert {w.dtype for w in model.weights} == {"float32"}
    assert all(layer.dtype_policy.name == "float32" for layer in model.layers)
    x, _ = read_features(tmp_path / "data/features", "test", num_labels=12)
    scores = np.asarray(model(np.asarray(x[:4])))
    assert scores.dtype == np.float32


MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from pathlib import Path
from pipeline.core.errors import StageError
from pipeline.data.feature_store import read_features
from pipeline.training.config import TrainConfig
from pipeline.training.devices import Placement
from pipeline.training.loop import train
from tests.test_train import outputs, settings
work = Path(sys.argv[1])
names = tuple(d.name for d in tf.config.list_logical_devices("CPU"))
placement = Placement("mirrored", names)
try:
    train(TrainConfig(**settings(batch_size=15)), work / "data/features", outputs(work),
          progress=False, placement=placement)
except StageError as exc:
    print("ERROR", exc)
for mixed in (False, True):
    metrics = train(TrainConfig(**settings(mixed_precision=mixed)), work / "data/features",
                    outputs(work), progress=False, placement=placement)
    print("METRICS", json.dumps(metrics))
"""


@pytest.mark.slow
def test_mirrored_strategy_trains_over_two_replicas(tmp_path):
    make_features(tmp_path / "data/features", noise=0.5)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(MIRRORED), str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    error = next(line for line in lines if line.startswith("ERROR"))
    assert "train.batch_size 15 must be a multiple of the 2 replicas" in error
    runs = [json.loads(line[len("METRICS ") :]) for line in lines if line.startswith("METRICS")]
    # Two CPU replicas are not a GPU: mixed precision is bfloat16 there.
    assert [m["dtype_policy"] for m in runs] == ["float32", "mixed_bfloat16"]
    for metrics in runs:
        assert (
            metrics["replicas"] == 2 and "MirroredStrategy over 2 devices" in metrics["placement"]
        )
        assert metrics["resumed_from_step"] == 0 and metrics["validation_accuracy"] >= 0.9
    assert json.loads((tmp_path / "models/logs/run.json").read_text())["replicas"] == 2
    # The saved model is a plain float32 model (built outside the strategy), loadable anywhere.
    assert all(w.dtype == np.float32 for w in model_weights(tmp_path / "models/keras"))


def test_batch_size_must_split_evenly_over_replicas(tmp_path):
    from pipeline.training.config import TrainConfig
    from pipeline.training.devices import Placement
    from pipeline.training.loop import train
    from tests.test_train import outputs, settings

    make_features(tmp_path / "data/features")
    placement = Placement("mirrored", ("/device:GPU:0", "/device:GPU:1", "/device:GPU:2"))
    with pytest.raises(StageError, match="batch_size 16 must be a multiple of the 3 replicas"):
        train(
            TrainConfig(**settings()),
            tmp_path / "data/features",
            outputs(tmp_path),
            progress=False,
            placement=placement,
        )
    assert not (tmp_path / "models/keras").exists()


def test_float16_step_scales_the_loss_and_learns():
    """The GPU's mixed_float16 step (LossScaleOptimizer), run on the CPU's float16 kernels."""
    import tensorflow as tf

    from pipeline.models import build_model
    from pipeline.training.distributed import make_step
    from pipeline.training.optim import make_optimizer
    from pipeline.training.precision import dtype_policy, wrap_optimizer

    rng = np.random.default_rng(1)
    prototypes = rng.normal(size=(4, 20, 12)).astype(np.float32)
    y = np.arange(64, dtype=np.int32) % 4
    x = prototypes[y] + rng.normal(0, 0.5, size=(64, 20, 12)).astype(np.float32)
    with dtype_policy("mixed_float16"):
        model = build_model("single_fc", (20, 12), 4, dropout=0.0)
    optimizer = wrap_optimizer(make_optimizer("adam", 0.01), "mixed_float16")
    assert hasattr(optimizer, "scale_loss")
    optimizer.build(model.trainable_variables)
    step = make_step(model, optimizer, None, "mixed_float16")
    losses = [float(step(tf.constant(x), tf.constant(y), tf.constant(0.01))[0]) for _ in range(20)]
    assert all(np.isfinite(losses)) and losses[-1] < 0.5 * losses[0]
    assert all(w.dtype == "float32" for w in model.trainable_weights)  # float32 variables


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_the_mixed_precision_step_counts_the_weight_penalties(policy):
    """The step under a mixed policy adds the layers' penalties (linear_head's L2) as the plain
    step does, so its loss on the same weights and batch is the plain step's."""
    import keras

    from pipeline.training.distributed import make_step
    from pipeline.training.optim import make_train_step

    def model():
        keras.utils.set_random_seed(0)
        inputs = keras.Input((4,))
        return keras.Model(
            inputs, keras.layers.Dense(3, kernel_regularizer=keras.regularizers.L2(10.0))(inputs)
        )

    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    y = np.arange(8, dtype=np.int32) % 3
    plain_loss = float(make_train_step(model(), keras.optimizers.SGD())(x, y, 0.0)[0])
    optimizer = keras.optimizers.SGD()
    if policy == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    mixed_loss = float(make_step(model(), optimizer, policy=policy)(x, y, 0.0)[0])
    assert mixed_loss == pytest.approx(plain_loss, rel=1e-5)
    assert plain_loss > 1.0  # the penalty of ten times the squared kernel dominates


def test_online_augmentation_and_spec_augment_together_are_a_param_error():
    from pipeline.core.errors import ParamError
    from pipeline.training.config import TrainConfig

    with pytest.raises(ParamError, match="train.online_augment .* set train.spec_augment: false"):
        TrainConfig(online_augment=True, spec_augment=True)
    assert TrainConfig(online_augment=True).online_augment


def test_online_augmentation_never_blanks_a_one_frame_embedding_whole():
    """Shift and time masks scale with the clip: a 1-frame input keeps its values but for
    frequency bands, whatever the step."""
    from pipeline.training.online_augment import augment_batch

    x = np.random.default_rng(1).normal(size=(64, 1, 256)).astype(np.float32)
    for step in range(20):
        out = np.asarray(augment_batch(x, seed=3, step=step, shift_frames=10))
        kept = (out == x).mean(axis=(1, 2))
        assert kept.min() >= 1 - 2 * 8 / 256  # at most two frequency bands of 8 bins masked


def test_the_replica_step_sums_a_committees_head_losses():
    """The step for strategies and mixed policies takes a committee's ``[batch, heads, labels]``
    logits as the plain step does: the same loss (each head's own, summed) and accuracy."""
    import keras

    from pipeline.models import build_model
    from pipeline.models.word_pair_mean import WordPairMeanOptions
    from pipeline.training.distributed import make_step
    from pipeline.training.optim import make_train_step

    def model():
        keras.utils.set_random_seed(0)
        return build_model(
            "word_pair_mean",
            (1, 29),
            4,
            dropout=0.0,
            options=WordPairMeanOptions(windows=3, width=8, channels=4, members=2),
        )

    x = np.random.default_rng(0).normal(size=(8, 1, 29)).astype(np.float32)
    y = np.arange(8, dtype=np.int32) % 4
    plain = [float(v) for v in make_train_step(model(), keras.optimizers.SGD())(x, y, 0.0)[:2]]
    other = [
        float(v)
        for v in make_step(model(), keras.optimizers.SGD(), policy="mixed_bfloat16")(x, y, 0.0)[:2]
    ]
    assert other == pytest.approx(plain, rel=1e-5)
    assert plain[0] > 4 * 1.0  # four heads' cross entropies near ln(4) each, summed
