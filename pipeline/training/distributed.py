"""The training step for a placement and a precision policy.

The default (no strategy, float32) is exactly :func:`optim.make_train_step`, so the CPU path is
unchanged. Under ``MirroredStrategy`` every replica takes an equal slice of the batch, its loss is
the sum over its examples divided by the global batch size (so the replicas' summed gradients are
those of the batch mean), and Keras all-reduces the gradients before one update of the mirrored
variables. Under ``mixed_float16`` the loss is scaled (``LossScaleOptimizer``); logits are cast to
float32 before the loss under any mixed policy.
"""

from __future__ import annotations

from pipeline.training.optim import cross_entropy, make_loss, make_train_step, predicted_labels


def make_step(
    model, optimizer, strategy=None, policy: str = "float32", label_smoothing: float = 0.0
):
    """A step ``(x, y, learning_rate) -> (loss, batch accuracy, all finite)`` (eager tensors in)."""
    if strategy is None and policy == "float32":
        return make_train_step(model, optimizer, label_smoothing)
    import tensorflow as tf

    loss_fn = make_loss(label_smoothing, reduction="sum")
    scaled = hasattr(optimizer, "scale_loss") and policy == "mixed_float16"
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1

    def replica_step(x, y, global_batch):
        with tf.GradientTape() as tape:
            logits = tf.cast(model(x, training=True), tf.float32)
            loss = cross_entropy(loss_fn, y, logits) / global_batch
            if (
                model.losses
            ):  # the layers' weight penalties (linear_head's L2), once over all replicas
                loss = loss + tf.cast(tf.add_n(model.losses), tf.float32) / replicas
            objective = optimizer.scale_loss(loss) if scaled else loss
        grads = tape.gradient(objective, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        predicted = predicted_labels(logits)
        correct = tf.reduce_sum(tf.cast(tf.equal(predicted, y), tf.float32))
        finite = tf.math.is_finite(loss)
        if not scaled:  # with loss scaling an overflowing gradient is expected: the optimizer skips
            finite = finite & tf.math.is_finite(
                tf.linalg.global_norm(grads)
            )  # it, lowers the scale
        bad = 1.0 - tf.cast(finite, tf.float32)
        return loss, correct, bad

    if strategy is None:

        @tf.function(reduce_retracing=True)
        def step(x, y, rate):
            optimizer.learning_rate.assign(rate)
            global_batch = tf.cast(tf.shape(y)[0], tf.float32)
            loss, correct, bad = replica_step(x, y, global_batch)
            return loss, correct / global_batch, bad == 0

        return step

    @tf.function(reduce_retracing=True)
    def distributed(x, y, rate, global_batch):
        optimizer.learning_rate.assign(rate)
        loss, correct, bad = strategy.run(replica_step, args=(x, y, global_batch))
        total = strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        correct = strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None)
        bad = strategy.reduce(tf.distribute.ReduceOp.SUM, bad, axis=None)
        return total, correct / global_batch, bad == 0

    def step(x, y, rate):
        batch = int(y.shape[0])
        if batch % replicas:
            raise ValueError(
                f"train.batch_size {batch} is not a multiple of the {replicas} replicas"
            )
        per = batch // replicas

        def slice_of(values):
            return strategy.experimental_distribute_values_from_function(
                lambda ctx: values[
                    ctx.replica_id_in_sync_group * per : (ctx.replica_id_in_sync_group + 1) * per
                ]
            )

        return distributed(slice_of(x), slice_of(y), rate, tf.constant(float(batch)))

    return step
