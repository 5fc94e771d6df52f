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


def make_loss(label_smoothing: float = 0.0, reduction: str = "sum_over_batch_size"):
    """Softmax cross entropy ``(y, logits)`` on integer labels; with ``label_smoothing`` > 0 the
    targets are ``1 - s`` on the label and ``s / labels`` spread over all (a model less sure of
    its training voices; 0 keeps the sparse loss itself, so the default's numbers do not move)."""
    import keras

    if not label_smoothing:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=reduction)
    import tensorflow as tf

    smoothed = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=label_smoothing, reduction=reduction
    )

    def loss(y, logits):
        return smoothed(tf.one_hot(y, logits.shape[-1], dtype=logits.dtype), logits)

    return loss


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


def make_train_step(model, optimizer, label_smoothing: float = 0.0):
    """A compiled step ``(x, y, learning_rate) -> (loss, batch accuracy, all finite)``: softmax
    cross entropy on the logits (each head's, for a committee; ``make_loss``), dropout on, one
    optimizer update."""
    import tensorflow as tf

    loss_fn = make_loss(label_smoothing)

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
