"""The learning-rate schedule, the optimizers and the compiled training step."""

from __future__ import annotations

OPTIMIZERS = ("gradient_descent", "momentum", "adam")


def learning_rate_at(step: int, steps: list[int], rates: list[float]) -> float:
    """The original's piecewise-constant schedule: step (1-based) s uses rates[i] for the first
    stage i whose cumulative end is >= s."""
    total = 0
    for count, rate in zip(steps, rates):
        total += count
        if step <= total:
            return float(rate)
    return float(rates[-1])


def make_optimizer(name: str, learning_rate: float):
    import keras

    if name == "gradient_descent":
        return keras.optimizers.SGD(learning_rate)
    if name == "momentum":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    raise ValueError(f"unknown optimizer {name!r}")


def cross_entropy(loss_fn, y, logits):
    """``loss_fn`` on logits ``[batch, labels]``; on a committee's ``[batch, heads, labels]`` the
    sum of each head's own loss (models/base.py), so each head gets its gradient alone."""
    if len(logits.shape) == 3:
        import tensorflow as tf

        return tf.add_n([loss_fn(y, logits[:, head]) for head in range(logits.shape[1])])
    return loss_fn(y, logits)


def predicted_labels(logits):
    """The top label of each example (a committee's: of the mean of its heads' softmaxes)."""
    import tensorflow as tf

    if len(logits.shape) == 3:
        logits = tf.reduce_mean(tf.nn.softmax(logits), axis=1)
    return tf.argmax(logits, axis=-1, output_type=tf.int32)


def make_train_step(model, optimizer):
    """A compiled step ``(x, y, learning_rate) -> (loss, batch accuracy, all finite)``: sparse
    softmax cross entropy on the logits (each head's, for a committee), dropout on, one
    optimizer update."""
    import keras
    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(reduce_retracing=True)
    def train_step(x, y, rate):
        optimizer.learning_rate.assign(rate)
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = cross_entropy(loss_fn, y, logits)
            if model.losses:  # weight penalties of the model's layers (linear_head's L2)
                loss = loss + tf.add_n(model.losses)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        predicted = predicted_labels(logits)
        accuracy = tf.reduce_mean(tf.cast(tf.equal(predicted, y), tf.float32))
        finite = tf.math.is_finite(loss) & tf.math.is_finite(tf.linalg.global_norm(grads))
        return loss, accuracy, finite

    return train_step
