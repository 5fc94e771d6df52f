"""What a TFLite model costs per call: multiply-accumulates counted from its graph, and time.

MACs are counted op by op from the tensor shapes: fully connected and batch matmul (output
elements x the inner dimension), 2-D convolutions (output elements x kernel area x input
channels), depthwise convolutions (output elements x kernel area) and elementwise multiplies (one
each, e.g. the SVDF's time filter). Additions, activations, copies and selects are not counted,
nor are the spectrogram, MFCC and pooling ops of a front end inside the graph, so an export that
takes audio counts its model's MACs (freeze counts the window model on model_float.tflite).
"""

from __future__ import annotations

import math
import time

import numpy as np

from pipeline.core.tf import tflite_interpreter


def tflite_macs(flat: bytes) -> int:
    """Multiply-accumulates of one invocation of the TFLite model ``flat``."""
    interpreter = tflite_interpreter(model_content=flat)
    interpreter.allocate_tensors()
    shapes = {
        d["index"]: tuple(int(v) for v in d["shape"]) for d in interpreter.get_tensor_details()
    }
    total = 0
    for op in interpreter._get_ops_details():  # the only public-enough view of the graph
        name, ins, outs = op["op_name"], list(op["inputs"]), list(op["outputs"])
        if not outs or outs[0] < 0:
            continue
        out = math.prod(shapes[outs[0]])
        if name == "FULLY_CONNECTED":
            total += out * shapes[ins[1]][-1]
        elif name == "BATCH_MATMUL":
            total += out * shapes[ins[0]][-1]
        elif name == "CONV_2D":
            _, kh, kw, cin = shapes[ins[1]]
            total += out * kh * kw * cin
        elif name == "DEPTHWISE_CONV_2D":
            _, kh, kw, _ = shapes[ins[1]]
            total += out * kh * kw
        elif name == "MUL":
            total += out
    return int(total)


def ms_per_call(run, calls: int = 300, repeats: int = 3) -> float:
    """Milliseconds per call of ``run()``: the best of ``repeats`` means over ``calls`` calls."""
    run()  # warm-up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            run()
        best = min(best, (time.perf_counter() - start) / calls)
    return 1000.0 * best


def tflite_invoke_ms(flat: bytes, calls: int = 300) -> float:
    """Milliseconds per ``invoke()`` of a TFLite model on zero inputs (one thread)."""
    interpreter = tflite_interpreter(model_content=flat, num_threads=1)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    return ms_per_call(interpreter.invoke, calls)
