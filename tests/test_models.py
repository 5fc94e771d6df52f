"""The model zoo: original shapes and parameter counts, the SVDF layer, serialisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from pipeline.core.errors import ParamError  # noqa: E402
from pipeline.models import MODELS, ORIGINAL_PARAMETER_COUNTS, build_model  # noqa: E402
from pipeline.models.ds_cnn import DsCnnOptions  # noqa: E402
from pipeline.models.io import count_parameters, with_softmax  # noqa: E402
from pipeline.models.layers import SVDF  # noqa: E402
from pipeline.models.low_latency_svdf import SvdfOptions  # noqa: E402


def dense(n_in, n_out):
    return n_in * n_out + n_out


def conv(kh, kw, c_in, c_out):
    return kh * kw * c_in * c_out + c_out


def same(size, stride):
    return math.ceil(size / stride)


def original_counts(frames: int, bins: int, labels: int) -> dict[str, int]:
    """Parameter counts worked out from the variable shapes in the original models.py."""
    pooled = same(frames, 2) * same(bins, 2)  # conv: SAME conv, 2x2 max-pool SAME, SAME conv
    tiny = same(frames, 2) * same(bins, 2)
    units, rank = 1280, 2
    return {
        "single_fc": dense(frames * bins, labels),
        "conv": conv(20, 8, 1, 64) + conv(10, 4, 64, 64) + dense(pooled * 64, labels),
        "low_latency_conv": conv(frames, 8, 1, 186)
        + dense((bins - 8 + 1) * 186, 128)
        + dense(128, 128)
        + dense(128, labels),
        "low_latency_svdf": bins * units * rank
        + units * rank * frames
        + units
        + dense(units, 256)
        + dense(256, 256)
        + dense(256, labels),
        "tiny_conv": conv(10, 8, 1, 8) + dense(tiny * 8, labels),
        "tiny_embedding_conv": conv(10, 8, 1, 8)
        + conv(10, 8, 8, 8)
        + dense(same(same(frames, 2), 8) * same(same(bins, 2), 8) * 8, labels),
    }


def test_table_matches_the_original_shapes():
    assert original_counts(98, 40, 12) == ORIGINAL_PARAMETER_COUNTS
    # The published round figures.
    assert round(ORIGINAL_PARAMETER_COUNTS["conv"], -3) == 927_000
    assert round(ORIGINAL_PARAMETER_COUNTS["low_latency_conv"], -4) == 950_000
    assert round(ORIGINAL_PARAMETER_COUNTS["low_latency_svdf"], -4) == 750_000


@pytest.mark.parametrize("architecture", sorted(ORIGINAL_PARAMETER_COUNTS))
@pytest.mark.parametrize("shape,labels", [((98, 40), 12), ((49, 40), 4)])
def test_parameter_counts_equal_the_original(architecture, shape, labels):
    model = build_model(architecture, shape, labels)
    assert count_parameters(model) == original_counts(*shape, labels)[architecture]


@pytest.mark.parametrize("architecture", sorted(MODELS))
def test_every_architecture_outputs_logits_per_label(architecture):
    shape = {
        "embedding_head": (9, 96),
        "embedding_conv": (9, 96),
        "linear_head": (9, 96),
        "word_pair_conv": (1, 9 * 96 + 2048),
        "word_pair_mean": (1, 9 * 96 + 2048),
    }.get(architecture, (98, 40))
    model = build_model(architecture, shape, 12, dropout=0.5)
    x = np.random.default_rng(0).normal(size=(3, *shape)).astype(np.float32)
    out = np.asarray(model(x, training=False))
    # Logits per label, or per head and label for a committee (base.py).
    assert out.shape == ((3, 2, 12) if architecture == "word_pair_mean" else (3, 12))
    assert np.isfinite(out).all()
    # Inference is deterministic (dropout off) ...
    np.testing.assert_array_equal(out, np.asarray(model(x, training=False)))
    # ... and training mode applies dropout (where the topology has any).
    if any(isinstance(layer, keras.layers.Dropout) for layer in model.layers):
        assert not np.allclose(out, np.asarray(model(x, training=True)))


def test_modern_models_are_small():
    assert count_parameters(build_model("ds_cnn", (98, 40), 12)) < 100_000
    assert count_parameters(build_model("embedding_head", (3, 96), 12)) < 100_000


def test_svdf_matches_the_original_formulation():
    """Reference: per-frame feature filters (the original's strided conv1d), then time filters
    (its batched matmul), filters grouped as [units, rank] and summed over rank, plus bias."""
    rng = np.random.default_rng(1)
    frames, bins, units, rank, batch = 7, 5, 6, 3, 4
    layer = SVDF(units, rank)
    x = rng.normal(size=(batch, frames, bins)).astype(np.float32)
    layer.build(x.shape)
    wf = rng.normal(size=(bins, units * rank)).astype(np.float32)
    wt = rng.normal(size=(units * rank, frames)).astype(np.float32)
    bias = rng.normal(size=units).astype(np.float32)
    layer.weights_frequency.assign(wf)
    layer.weights_time.assign(wt)
    layer.bias.assign(bias)
    expected = np.zeros((batch, units), np.float32)
    for b in range(batch):
        for u in range(units):
            for r in range(rank):
                f = u * rank + r
                activations = x[b] @ wf[:, f]  # one value per frame
                expected[b, u] += activations @ wt[f]
            expected[b, u] += bias[u]
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-4, atol=1e-4)


def test_saved_model_with_custom_layer_round_trips(tmp_path):
    model = with_softmax(build_model("low_latency_svdf", (20, 10), 4))
    x = np.random.default_rng(2).normal(size=(2, 20, 10)).astype(np.float32)
    scores = np.asarray(model(x))
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(loaded(x)), scores, rtol=1e-6)


def test_model_options_size_the_model_and_are_validated():
    """Each model's own hyperparameters (params.yaml model.<name>) reach its builder."""
    default = count_parameters(build_model("ds_cnn", (98, 40), 12))
    narrow = build_model(
        "ds_cnn", (98, 40), 12, options=DsCnnOptions(channels=16, blocks=[[5, 1], [7, 2]])
    )
    assert count_parameters(narrow) < default / 4
    svdf = build_model("low_latency_svdf", (98, 40), 12, options=SvdfOptions(units=64, rank=1))
    assert svdf.get_layer("svdf").units == 64
    with pytest.raises(ParamError, match=r"model.ds_cnn.blocks.*\[kernel, stride\] pair"):
        DsCnnOptions.from_dict({"channels": 8, "blocks": [[5, 1, 3]], "padding": "same"})
    with pytest.raises(ParamError, match="model.low_latency_svdf.rank"):
        SvdfOptions.from_dict({"units": 10, "rank": 0})
    with pytest.raises(TypeError, match="SvdfOptions"):
        build_model("low_latency_svdf", (98, 40), 12, options=DsCnnOptions())


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="unknown model architecture 'lstm'"):
        build_model("lstm", (98, 40), 12)
    with pytest.raises(ValueError, match="feature_shape"):
        build_model("conv", (98,), 12)
    with pytest.raises(ValueError, match="num_labels"):
        build_model("conv", (98, 40), 1)


def test_model_file_is_byte_identical_for_identical_weights(tmp_path):
    """Keras stamps save time and object ids into .keras files; save_model_file does not."""
    import keras

    from pipeline.models.io import save_model_file

    models = []
    for i in range(2):
        keras.utils.set_random_seed(3)
        models.append(with_softmax(build_model("ds_cnn", (98, 40), 12)))
        save_model_file(models[-1], tmp_path / f"model{i}.keras")
    assert (tmp_path / "model0.keras").read_bytes() == (tmp_path / "model1.keras").read_bytes()
    loaded = keras.saving.load_model(tmp_path / "model0.keras")
    x = np.random.default_rng(0).normal(size=(2, 98, 40)).astype(np.float32)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), models[0].predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


def test_linear_head_weight_penalty_enters_the_training_loss():
    """linear_head's L2 penalty is part of the loss the train stage minimises (make_train_step)."""
    import tensorflow as tf

    from pipeline.models.linear_head import LinearOptions
    from pipeline.training.optim import make_optimizer, make_train_step

    x = np.random.default_rng(1).normal(size=(8, 1, 50)).astype(np.float32)
    y = np.arange(8, dtype=np.int32) % 4
    losses = {}
    for l2 in (0.0, 100.0):
        keras.utils.set_random_seed(3)
        model = build_model("linear_head", (1, 50), 4, dropout=0.0, options=LinearOptions(l2=l2))
        step = make_train_step(model, make_optimizer("adam", 0.0))
        losses[l2] = float(step(tf.constant(x), tf.constant(y), tf.constant(0.0))[0])
    weights = model.get_layer("final_fc").kernel.numpy()
    np.testing.assert_allclose(losses[100.0] - losses[0.0], 100.0 * np.sum(weights**2), rtol=1e-4)


def test_word_pair_conv_reads_the_speech_windows_and_the_other_vector(tmp_path):
    """The first windows x width values reach the convolutions as [windows, width], the rest the
    standardization; the logits depend on both; a .keras file round-trips; features too short for
    the speech part are a ParamError that names the front end to use."""
    from pipeline.models.io import save_model_file
    from pipeline.models.word_pair_conv import WordPairConvOptions

    options = WordPairConvOptions(windows=3, width=8, channels=4)
    model = build_model("word_pair_conv", (1, 3 * 8 + 5), 4, dropout=0.0, options=options)
    x = np.random.default_rng(0).normal(size=(2, 1, 29)).astype(np.float32)
    windows = keras.Model(model.inputs[0], model.get_layer("speech_windows").output)(x)
    np.testing.assert_array_equal(np.asarray(windows), x[:, 0, :24].reshape(2, 3, 8))
    vector = keras.Model(model.inputs[0], model.get_layer("standardize").input)(x)
    np.testing.assert_array_equal(np.asarray(vector), x[:, 0, 24:])
    out = np.asarray(model(x))
    for part in (slice(0, 24), slice(24, 29)):
        changed = x.copy()
        changed[:, 0, part] += np.random.default_rng(1).normal(size=changed[:, 0, part].shape)
        assert np.abs(np.asarray(model(changed)) - out).max() > 1e-2
    save_model_file(with_softmax(model), tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), np.asarray(with_softmax(model)(x)), rtol=1e-5
    )
    with pytest.raises(ParamError, match="embedding_efficientword"):
        build_model("word_pair_conv", (9, 96), 12)


def small_committee(dropout=0.0, members=1):
    from pipeline.models.word_pair_mean import WordPairMeanOptions

    keras.utils.set_random_seed(5)
    options = WordPairMeanOptions(windows=3, width=8, channels=4, members=members)
    return build_model("word_pair_mean", (1, 3 * 8 + 5), 4, dropout=dropout, options=options)


def test_committee_heads_train_apart():
    """word_pair_mean's training loss gives each head exactly the gradient of its own cross
    entropy (the models trained apart on the same batches), not of their mixture; with
    ``members: 2`` there are 4 heads, each with weights of its own and its own initialization."""
    import tensorflow as tf

    from pipeline.training.optim import cross_entropy

    model = small_committee(members=2)
    x = tf.constant(np.random.default_rng(0).normal(size=(6, 1, 29)).astype(np.float32))
    y = tf.constant(np.arange(6, dtype=np.int32) % 4)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    variables = model.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        logits = model(x, training=True)
        joint = cross_entropy(loss_fn, y, logits)
        alone = [loss_fn(y, logits[:, head]) for head in range(logits.shape[1])]
        mixture = loss_fn(y, tf.math.log(tf.reduce_mean(tf.nn.softmax(logits), axis=1)))
    assert len(alone) == 4
    np.testing.assert_allclose(float(joint), float(tf.add_n(alone)), rtol=1e-6)
    joint_grads = tape.gradient(joint, variables)
    own = [tape.gradient(loss, variables, unconnected_gradients="zero") for loss in alone]
    owners = []
    for i, (variable, grad) in enumerate(zip(variables, joint_grads)):
        reached = [head for head in range(4) if np.asarray(own[head][i]).any()]
        assert len(reached) == 1, (variable.path, reached)  # one head's loss reaches each weight
        np.testing.assert_allclose(
            np.asarray(grad),
            np.asarray(own[reached[0]][i]),
            rtol=1e-5,
            atol=1e-7,
            err_msg=variable.path,
        )
        owners.append(reached[0])
    assert set(owners) == {0, 1, 2, 3}
    mixture_grads = tape.gradient(mixture, variables)
    assert any(
        not np.allclose(np.asarray(a), np.asarray(b), atol=1e-6)
        for a, b in zip(joint_grads, mixture_grads)
    )
    # Members of a kind start apart: their logits differ on the same input.
    out = np.asarray(model(x))
    assert not np.allclose(out[:, 0], out[:, 2]) and not np.allclose(out[:, 1], out[:, 3])


def test_committee_scores_are_the_mean_of_its_heads(tmp_path):
    """The saved model's scores are the mean of the heads' softmaxes, in Keras (round-tripped
    through a .keras file), the training loop's prediction, and the float and int8 TFLite
    conversions the freeze stage writes."""
    import tensorflow as tf

    from pipeline.core.tf import tflite_interpreter
    from pipeline.export.convert import convert_int8_tflite, features_tflite
    from pipeline.models.io import save_model_file
    from pipeline.training.optim import predicted_labels

    model = small_committee()
    x = np.random.default_rng(1).normal(size=(16, 1, 29)).astype(np.float32)
    logits = np.asarray(model(x))
    heads = np.exp(logits - logits.max(-1, keepdims=True))
    expected = (heads / heads.sum(-1, keepdims=True)).mean(axis=1)
    scores = with_softmax(model)
    np.testing.assert_allclose(np.asarray(scores(x)), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(
        np.asarray(predicted_labels(tf.constant(logits))), expected.argmax(1)
    )
    save_model_file(scores, tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-7)

    cfg = type("Shape", (), {"feature_shape": (1, 29)})()
    for flat, tolerance in (
        (features_tflite(loaded, cfg, False), 1e-5),
        (convert_int8_tflite(loaded, cfg, False, x), 0.05),
    ):
        interpreter = tflite_interpreter(model_content=flat)
        interpreter.allocate_tensors()
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        got = []
        for row in x:
            value = row[None]
            if inp["dtype"] == np.int8:
                scale, zero = inp["quantization"]
                value = np.clip(np.round(value / scale + zero), -128, 127).astype(np.int8)
            interpreter.set_tensor(inp["index"], value)
            interpreter.invoke()
            result = interpreter.get_tensor(out["index"]).astype(np.float32)
            if out["dtype"] == np.int8:
                scale, zero = out["quantization"]
                result = (result - zero) * scale
            got.append(result[0])
        np.testing.assert_allclose(np.array(got), expected, atol=tolerance)


def test_embedding_conv_members_are_heads_of_one_model():
    from pipeline.models.embedding_conv import EmbeddingConvOptions

    one = build_model("embedding_conv", (9, 96), 12, options=EmbeddingConvOptions())
    three = build_model("embedding_conv", (9, 96), 12, options=EmbeddingConvOptions(members=3))
    # one member is the plain head (its layer names, so the default's files do not change)
    assert one.output_shape == (None, 12)
    assert {layer.name for layer in one.layers} >= {"conv1", "conv2", "final_fc"}
    # three: [batch, heads, labels], each head its own weights
    assert three.output_shape == (None, 3, 12)
    assert count_parameters(three) == 3 * count_parameters(one)
    x = np.random.default_rng(0).normal(size=(2, 9, 96)).astype(np.float32)
    heads = three.predict(x, verbose=0)
    assert not np.allclose(heads[:, 0], heads[:, 1])
