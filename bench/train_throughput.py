"""Training throughput of every model on this machine (short runs on random features).

    python -m bench.train_throughput [--steps 20] [--batch-size 100] [--arch conv ds_cnn ...]
                                     [--mixed-precision]

Prints, per architecture: input shape, trainable parameters next to the original's figure,
milliseconds per step and training examples per second (the compiled train step of
pipeline/training/optim.py, after two warm-up steps), on the device training would use (a GPU
when TensorFlow sees one; pipeline/training/devices.py). ``--mixed-precision`` times the step of
``train.mixed_precision: true`` (mixed_float16 on a GPU, mixed_bfloat16 on a CPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

# Speech-embedding features of a 1 s clip: 9 windows of 96 (the padding of
# pipeline/frontends/embedding.py).
EMBEDDING_SHAPE = (9, 96)
MFCC_SHAPE = (98, 40)


def measure(
    architecture: str, steps: int, batch_size: int, labels: int = 12, policy: str = "float32"
) -> dict:
    import keras
    import tensorflow as tf

    from pipeline.models import ORIGINAL_PARAMETER_COUNTS, build_model
    from pipeline.models.io import count_parameters
    from pipeline.training.distributed import make_step
    from pipeline.training.optim import make_optimizer
    from pipeline.training.precision import dtype_policy, wrap_optimizer

    keras.utils.set_random_seed(0)
    shape = EMBEDDING_SHAPE if architecture == "embedding_head" else MFCC_SHAPE
    with dtype_policy(policy):
        model = build_model(architecture, shape, labels)
    optimizer = wrap_optimizer(make_optimizer("adam", 0.001), policy)
    step = make_step(model, optimizer, None, policy)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch_size, *shape)).astype(np.float32))
    y = tf.constant(rng.integers(0, labels, batch_size).astype(np.int32))
    rate = tf.constant(0.001, tf.float32)
    for _ in range(2):
        step(x, y, rate)[0].numpy()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(x, y, rate)[0]
    loss.numpy()
    seconds = time.perf_counter() - start
    return {
        "architecture": architecture,
        "input": "x".join(map(str, shape)),
        "parameters": count_parameters(model),
        "original": ORIGINAL_PARAMETER_COUNTS.get(architecture),
        "ms_per_step": 1000 * seconds / steps,
        "examples_per_s": steps * batch_size / seconds,
    }


def main(argv=None) -> int:
    from pipeline.models import MODELS

    ARCHITECTURES = tuple(MODELS)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--arch", nargs="+", default=list(ARCHITECTURES), choices=ARCHITECTURES)
    parser.add_argument("--mixed-precision", action="store_true")
    args = parser.parse_args(argv)
    from pipeline.training.devices import detect_placement
    from pipeline.training.precision import policy_name

    placement = detect_placement()
    policy = policy_name(args.mixed_precision, placement.on_gpu)
    print(
        f"CPU cores: {os.cpu_count()}, batch {args.batch_size}, {args.steps} timed steps (adam), "
        f"on {placement.devices[0] if placement.devices else 'the CPU'}, {policy}"
    )
    header = (
        f"{'architecture':<20} {'input':>7} {'params':>9} {'original':>9} {'ms/step':>9} "
        f"{'examples/s':>11}"
    )
    print(header)
    print("-" * len(header))
    for architecture in args.arch:
        r = measure(architecture, args.steps, args.batch_size, policy=policy)
        original = f"{r['original']:,}" if r["original"] else "-"
        print(
            f"{r['architecture']:<20} {r['input']:>7} {r['parameters']:>9,} {original:>9} "
            f"{r['ms_per_step']:>9.1f} {r['examples_per_s']:>11.0f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
