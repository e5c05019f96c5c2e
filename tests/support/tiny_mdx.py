"""A tiny MDX-Net stand-in for Kim_Vocal_2.onnx, built with the `onnx` package: the same input and output.

Kim_Vocal_2 maps a spectrum `input` [batch, 4, 3072, 256] (left re/im, right re/im) to the vocals' spectrum `output`
of the same shape. The tiny model does that with a 3x3 convolution and a sigmoid mask (`output = input *
sigmoid(conv(input))`), so each output bin depends on its neighbours in time and frequency, as a real model's do, and
a chunking or windowing mistake shows in the result.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.audio.vocal_separation import KIM_VOCAL_2, MdxParams

OPSET = 13  # Kim_Vocal_2.onnx's opset; Conv, Sigmoid and Mul exist there unchanged
WEIGHT_SCALE = 1e-3  # STFT bins of a loud mix reach ~1e3: this keeps the mask between 0 and 1 rather than saturated


def build_tiny_mdx(path: Path, params: MdxParams = KIM_VOCAL_2, seed: int = 0) -> Path:
    """Write the tiny model to `path` (parent folders created); returns `path`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array((rng.standard_normal((4, 4, 3, 3)) * WEIGHT_SCALE).astype(np.float32), "weight")
    bias = numpy_helper.from_array((rng.standard_normal(4) * 0.1).astype(np.float32), "bias")
    shape = ["batch", 4, params.dim_f, params.dim_t]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "weight", "bias"], ["logits"], pads=[1, 1, 1, 1]),
            helper.make_node("Sigmoid", ["logits"], ["mask"]),
            helper.make_node("Mul", ["input", "mask"], ["output"]),
        ],
        "tiny_mdx",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
        initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # readable by every onnxruntime since 1.10
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
