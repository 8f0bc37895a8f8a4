"""int8 LiteRT (.tflite) and ExecuTorch (.pte) files through the formats' PT2E quantizers.

PyTorch 2 Export quantization (``torchao.quantization.pt2e``: ``prepare_pt2e`` inserts observers into the
``torch.export`` graph, the calibration images run through it, ``convert_pt2e`` replaces them with quantize /
dequantize pairs), annotated by each format's own quantizer:

- ``.tflite``: ``litert_torch.quantize.pt2e_quantizer.PT2EQuantizer`` with its symmetric config (int8 activations,
  per-channel int8 weights), converted by ``litert_torch.convert`` with that quantizer's ``QuantConfig``;
- ``.pte``: ExecuTorch's ``XNNPACKQuantizer`` with its symmetric config (the same scheme), lowered to XNNPACK.

Layers kept in float (the accuracy guard's fallback, ``quantization.quantize_model``) are given by module path; the
annotations the quantizer put on their nodes are removed (neither quantizer takes a "no quantization" module setting),
so they run in float between dequantize and quantize. The calibration inputs and the guard are those of the ONNX path
(``quantization.calibration_inputs``, ``quantization.quantize_model``).
"""
from typing import Callable, Dict, Sequence

import numpy as np
import torch

from .export import exportable_network
from .graph_format import import_mobile_dependency
from .mobile_export import MOBILE_FORMATS, executorch_bytes, with_tflite_metadata, write_file

ANNOTATION_KEY = 'quantization_annotation'  # where PT2E quantizers put a node's annotation (node.meta)


def node_module(node: torch.fx.Node) -> str:
    """The path of the innermost module a ``torch.export`` node comes from, without the exporter's 'model.' prefix
    (``export.Network`` holds the detector or segmentor as ``model``); '' for nodes outside modules."""
    stack = node.meta.get('nn_module_stack') or {}
    if not stack:
        return ''
    path = str(list(stack.values())[-1][0])
    return path[len('model.'):] if path.startswith('model.') else path


def is_convolution(node: torch.fx.Node) -> bool:
    return node.op == 'call_function' and 'conv' in str(node.target)


def sensitive_modules(graph: torch.fx.Graph) -> Dict[str, str]:
    """The graph's first and last convolutions (as ``quantization.sensitive_layers`` finds them in an ONNX graph):
    node name -> module path. First: convolutions reading the image input; last: for each output, the convolution
    found by walking back from it through other nodes (views, activations)."""
    image = next(node for node in graph.nodes if node.op == 'placeholder' and node.users)
    found = [user for user in image.users if is_convolution(user)]
    output = next(node for node in graph.nodes if node.op == 'output')
    for value in output.all_input_nodes:
        pending, seen = [value], set()
        while pending:
            node = pending.pop()
            if node.name in seen:
                continue
            seen.add(node.name)
            if is_convolution(node):
                found.append(node)
            else:
                pending += node.all_input_nodes
    return {node.name: node_module(node) for node in found}


def shares_with(node: torch.fx.Node, removed: set) -> bool:
    """Whether ``node``'s annotation has a shared quantization spec rooted at a node of ``removed`` (or an edge
    from or to one)."""
    annotation = node.meta.get(ANNOTATION_KEY)
    if annotation is None:
        return False
    specs = [*annotation.input_qspec_map.values(), annotation.output_qspec]
    for spec in specs:
        source = getattr(spec, 'edge_or_node', None)  # only SharedQuantizationSpec has one
        if source is not None and (source in removed if isinstance(source, torch.fx.Node)
                                   else any(end in removed for end in source)):
            return True
    return False


def float_modules_quantizer(quantizer, modules: Sequence[str]):
    """``quantizer`` with the nodes of ``modules`` (module paths) left unannotated, i.e. in float."""
    base = import_mobile_dependency('torchao.quantization.pt2e.quantizer').Quantizer
    kept = set(modules)

    class FloatModulesQuantizer(base):
        def transform_for_annotation(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            return quantizer.transform_for_annotation(model)

        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            model = quantizer.annotate(model)
            removed = {node for node in model.graph.nodes
                       if node_module(node) in kept and node.meta.pop(ANNOTATION_KEY, None) is not None}
            # A node sharing its quantization with a removed one (an activation fused with its convolution) loses
            # its annotation too, until none refers to a removed node.
            while True:
                sharing = {node for node in model.graph.nodes if shares_with(node, removed)}
                if not sharing:
                    return model
                for node in sharing:
                    node.meta.pop(ANNOTATION_KEY)
                removed |= sharing

        def validate(self, model: torch.fx.GraphModule) -> None:
            quantizer.validate(model)

    return FloatModulesQuantizer()


def format_quantizer(fmt: str):
    """The format's own PT2E quantizer, symmetric int8 with per-channel weights."""
    if fmt == 'tflite':
        pt2e = import_mobile_dependency('litert_torch.quantize.pt2e_quantizer')
        return pt2e.PT2EQuantizer().set_global(pt2e.get_symmetric_quantization_config(is_per_channel=True))
    xnnpack = import_mobile_dependency('executorch.backends.xnnpack.quantizer.xnnpack_quantizer')
    return xnnpack.XNNPACKQuantizer().set_global(xnnpack.get_symmetric_quantization_config(is_per_channel=True))


def quantize_mobile(config, checkpoint: str, fmt: str, out_file: str, inputs: Sequence[np.ndarray],
                    float_modules: Sequence[str] = ()) -> str:
    """Write the int8 ``fmt`` file ``out_file`` of the config's model with the checkpoint's weights, calibrated on
    ``inputs`` (the network's float inputs) with ``float_modules`` kept float; returns ``out_file``."""
    pt2e = import_mobile_dependency('torchao.quantization.pt2e.quantize_pt2e')
    _, network, metadata, _ = exportable_network(config, checkpoint)
    example = (torch.from_numpy(inputs[0]),)
    quantizer = format_quantizer(fmt)
    with torch.no_grad():
        graph_module = torch.export.export(network, example, strict=False).module()
        prepared = pt2e.prepare_pt2e(graph_module, float_modules_quantizer(quantizer, float_modules))
        for batch in inputs:
            prepared(torch.from_numpy(batch))
        # fold_quantize=False: litert_torch reads the quantize nodes of the weights (its own tests' setting)
        quantized = pt2e.convert_pt2e(prepared, fold_quantize=fmt == 'executorch')
    if fmt == 'tflite':
        litert_torch = import_mobile_dependency('litert_torch')
        quant_config = import_mobile_dependency('litert_torch.quantize.quant_config').QuantConfig(
            pt2e_quantizer=quantizer)
        with torch.no_grad():
            content = litert_torch.convert(quantized, example, quant_config=quant_config).model_content()
        content = with_tflite_metadata(content, metadata)
    else:
        content = executorch_bytes(quantized, example, metadata)
    return write_file(out_file, content)


def mobile_quantizer(config, checkpoint: str, out_file: str) -> Callable[..., str]:
    """``quantize(fp32_file, out_file, inputs, exclude)`` for the guard of ``quantization.quantize_model``: the
    format follows ``out_file``; ``exclude``: module paths (the keys of ``sensitive_mobile_modules``)."""
    fmt = next(f for f, extension in MOBILE_FORMATS.items() if out_file.endswith(extension))

    def quantize(fp32_file: str, target: str, inputs: Sequence[np.ndarray], exclude: Sequence[str] = ()) -> str:
        return quantize_mobile(config, checkpoint, fmt, target, inputs, exclude)
    return quantize


def sensitive_mobile_modules(config, checkpoint: str, input_size: Sequence[int]) -> Dict[str, str]:
    """The network's first and last convolutions (``sensitive_modules``): module path -> the operator."""
    _, network, _, _ = exportable_network(config, checkpoint)
    with torch.no_grad():
        program = torch.export.export(network, (torch.zeros(1, 3, *input_size),), strict=False)
    nodes = {node.name: node for node in program.graph.nodes}
    return {path: str(nodes[name].target) for name, path in sensitive_modules(program.graph).items()}
