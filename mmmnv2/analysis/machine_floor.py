"""The machine's floor for a network: its FLOPs over the best compute rate measured on this machine, this run.

Two peaks, both on the benchmark's threads: an fp32 GEMM in PyTorch and a dense 3x3 convolution in ONNX Runtime (the
kind of kernel a CNN spends its time in). The floor is what a network would take if every operation ran at the higher
of the two.
"""
from typing import Dict, Optional

import numpy as np
import torch

from ..utils import import_optional
from .benchmark import time_calls


def gemm_peak_gflops(threads: int, size: int = 1536, repeats: int = 5) -> float:
    """Best fp32 GEMM rate of PyTorch on ``threads`` threads: 2 * size^3 FLOPs over the fastest of ``repeats``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(0)
        a, b = (torch.randn(size, size, generator=generator) for _ in range(2))
        torch.mm(a, b)
        best = min(time_calls(lambda: torch.mm(a, b), 1, repeats, 10.0, repeats))
    finally:
        torch.set_num_threads(previous)
    return 2 * size ** 3 / (best * 1e-3) / 1e9


def conv_peak_gflops(threads: int, channels: int = 256, size: int = 56, repeats: int = 10) -> float:
    """Best rate of a dense 3x3 convolution (``channels`` -> ``channels`` at ``size`` x ``size``, batch 1) in ONNX
    Runtime on ``threads`` threads: 2 * size^2 * channels^2 * 9 FLOPs over the fastest of ``repeats`` runs."""
    onnxruntime = import_optional('onnxruntime', 'deploy', 'the convolution peak of the deploy benchmark')
    onnx = import_optional('onnx', 'deploy', 'the convolution peak of the deploy benchmark')
    helper, tensor = onnx.helper, onnx.TensorProto
    weight = np.random.RandomState(0).randn(channels, channels, 3, 3).astype(np.float32) * 0.05
    graph = helper.make_graph(
        [helper.make_node('Conv', ['x', 'w'], ['y'], pads=[1, 1, 1, 1])], 'conv',
        [helper.make_tensor_value_info('x', tensor.FLOAT, [1, channels, size, size])],
        [helper.make_tensor_value_info('y', tensor.FLOAT, [1, channels, size, size])],
        [onnx.numpy_helper.from_array(weight, 'w')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=['CPUExecutionProvider'])
    inputs = {'x': np.random.RandomState(1).randn(1, channels, size, size).astype(np.float32)}
    best = min(time_calls(lambda: session.run(None, inputs), 2, repeats, 10.0, repeats))
    return 2 * size * size * channels * channels * 9 / (best * 1e-3) / 1e9


def measure_peak(threads: int, gemm_size: int, earlier: Optional[Dict] = None) -> Dict:
    """Both compute peaks (GFLOP/s), each the best of this and an ``earlier`` measurement of the run, and the one
    the floor uses: the higher."""
    peaks = dict(gemm_gflops=gemm_peak_gflops(threads, gemm_size), conv_gflops=conv_peak_gflops(threads))
    if earlier:
        peaks = {key: max(value, earlier[key]) for key, value in peaks.items()}
    source = max(peaks, key=peaks.get)
    return dict(peaks, peak_gflops=peaks[source],
                peak_source=dict(gemm_gflops=f'PyTorch fp32 GEMM {gemm_size}x{gemm_size}x{gemm_size}',
                                 conv_gflops='ONNX Runtime fp32 3x3 conv 256->256 at 56x56')[source])


def floor_ms(flops: float, peak_gflops: float) -> float:
    """Milliseconds ``flops`` take at ``peak_gflops``: the network's time if every operation ran at the peak."""
    return flops / (peak_gflops * 1e9) * 1e3
