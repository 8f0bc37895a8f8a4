"""int8 LiteRT (.tflite) and ExecuTorch (.pte) files through the formats' PT2E quantizers.

PyTorch 2 Export quantization (``torchao.quantization.pt2e``: ``prepare_pt2e`` inserts observers into the
``torch.export`` graph, the calibration images run through it, ``convert_pt2e`` replaces them with quantize /
dequantize pairs), annotated by each format's own quantizer:

- ``.tflite``: ``litert_torch.quantize.pt2e_quantizer.PT2EQuantizer`` with its symmetric config (int8 activations,
  per-channel int8 weights), converted by ``litert_torch.convert`` with that quantizer's ``QuantConfig``;
- ``.pte``: ExecuTorch's ``XNNPACKQuantizer`` with its symmetric config (the same scheme), lowered to XNNPACK.

Layers kept in float (the accuracy guard's fallback, ``quantization.quantize_model``) are given by module path; the
annotations the quantizer put on their nodes are removed (neither quantizer takes a "no quantization" module setting),
so they run in float between dequantize and quantize. Files image in and result out (``preprocess``,
``postprocess``) are quantized the same way with their pre- and post-processing modules (``PIPELINE_MODULES``) left
float too, calibrated on the uint8 images they take. The calibration inputs and the guard are those of the ONNX path
(``quantization.calibration_inputs``, ``quantization.quantize_model``); ``quantize_mobile_on_images`` calibrates on
given image files instead of the config's train set (photos of where the model will run, when the train set is not at
hand).
"""
import copy
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import MODELS, DefaultScope

from ..utils import config_host, fixed_input_size, image_file_transforms
from .export import exportable_network
from .graph_format import import_mobile_dependency
from .mobile_export import MOBILE_FORMATS, executorch_bytes, with_tflite_metadata, write_file
from .runner import network_inputs

ANNOTATION_KEY = 'quantization_annotation'  # where PT2E quantizers put a node's annotation (node.meta)
# The modules of ``export.Network`` around the network (pre- and post-processing), never quantized: the quantizers
# would annotate the box decoding's multiplications and additions (measured on a random toy SSDLite .pte: its best
# boxes 40-46 px from PyTorch's with the decoding in int8, 0.2 px with it in float).
PIPELINE_MODULES = ('image_input', 'results')


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


def sensitive_modules(graph: torch.fx.Graph, first: bool = True) -> Dict[str, str]:
    """The graph's first and last convolutions (as ``quantization.sensitive_layers`` finds them in an ONNX graph):
    node name -> module path. First: convolutions reading the image input (``first=False``: none); last: for each
    output, the convolution found by walking back from it through other nodes (views, activations)."""
    image = next(node for node in graph.nodes if node.op == 'placeholder' and node.users)
    found = [user for user in image.users if is_convolution(user)] if first else []
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


def in_modules(node: torch.fx.Node, modules: Sequence[str]) -> bool:
    """Whether ``node`` comes from one of ``modules`` (module paths) or a module inside one."""
    path = node_module(node)
    return any(path == module or path.startswith(module + '.') for module in modules)


def float_modules_quantizer(quantizer, modules: Sequence[str]):
    """``quantizer`` with the nodes of ``modules`` (module paths, and the modules inside them) left unannotated,
    i.e. in float."""
    base = import_mobile_dependency('torchao.quantization.pt2e.quantizer').Quantizer
    kept = tuple(modules)

    class FloatModulesQuantizer(base):
        def transform_for_annotation(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            return quantizer.transform_for_annotation(model)

        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            model = quantizer.annotate(model)
            removed = {node for node in model.graph.nodes
                       if in_modules(node, kept) and node.meta.pop(ANNOTATION_KEY, None) is not None}
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
                    float_modules: Sequence[str] = (), preprocess: bool = False,
                    image_size: Optional[Tuple[int, int]] = None, postprocess: bool = False) -> str:
    """Write the int8 ``fmt`` file ``out_file`` of the config's model with the checkpoint's weights, calibrated on
    ``inputs`` (what the file takes: the network's float inputs, or with ``preprocess`` uint8 (1, H, W, 3) RGB images
    of ``image_size``) with ``float_modules`` kept float; returns ``out_file``.

    ``preprocess`` / ``image_size`` / ``postprocess``: the file of ``export_mobile`` with the same arguments, image in
    and result out; the pre- and post-processing (``PIPELINE_MODULES``) stay as they are in the fp32 file (float,
    integer outputs), only the network between them is quantized.
    """
    pt2e = import_mobile_dependency('torchao.quantization.pt2e.quantize_pt2e')
    float_modules = [*float_modules, *PIPELINE_MODULES]
    if fmt == 'tflite' and postprocess:
        # LiteRT's converter moves the dequantization of int8 outputs down through the post-processing's reshapes
        # into its concatenation of the levels, which it requantizes to one level's scale, clipping the others
        # (measured: scores 0.36 for 0.54). Outputs of float convolutions have nothing to requantize.
        float_modules += list(sensitive_mobile_modules(config, checkpoint, first=False))
    _, network, metadata, _ = exportable_network(config, checkpoint, preprocess, image_size, postprocess)
    example = (torch.from_numpy(inputs[0]),)
    quantizer = format_quantizer(fmt)
    with torch.no_grad():
        graph_module = torch.export.export(network, example, strict=False).module()
        prepared = pt2e.prepare_pt2e(graph_module,
                                     float_modules_quantizer(quantizer, float_modules))
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


def mobile_quantizer(config, checkpoint: str, out_file: str, preprocess: bool = False,
                     image_size: Optional[Tuple[int, int]] = None, postprocess: bool = False) -> Callable[..., str]:
    """``quantize(fp32_file, out_file, inputs, exclude)`` for the guard of ``quantization.quantize_model``: the
    format follows ``out_file``; ``exclude``: module paths (the keys of ``sensitive_mobile_modules``); the file
    image in / result out as ``quantize_mobile``'s ``preprocess``, ``image_size`` and ``postprocess`` say."""
    fmt = next(f for f, extension in MOBILE_FORMATS.items() if out_file.endswith(extension))

    def quantize(fp32_file: str, target: str, inputs: Sequence[np.ndarray], exclude: Sequence[str] = ()) -> str:
        return quantize_mobile(config, checkpoint, fmt, target, inputs, exclude, preprocess, image_size, postprocess)
    return quantize


def sensitive_mobile_modules(config, checkpoint: str, input_size: Optional[Sequence[int]] = None,
                             first: bool = True) -> Dict[str, str]:
    """The network's first and last convolutions (``sensitive_modules``; ``first=False``: the last only): module path
    -> the operator; found in the network alone (at ``input_size``, default the config's), the same module paths in
    image-in, result-out files."""
    _, network, _, example = exportable_network(config, checkpoint)
    if input_size is not None:
        example = torch.zeros(1, 3, *input_size)
    with torch.no_grad():
        program = torch.export.export(network, (example,), strict=False)
    nodes = {node.name: node for node in program.graph.nodes}
    return {path: str(nodes[name].target) for name, path in sensitive_modules(program.graph, first).items()}


def image_inputs(config: Union[str, Config], images: Sequence[str]) -> List[np.ndarray]:
    """Each image file as the network's float input (1, 3, H, W): the config's test pipeline (annotation loaders
    left out, ``image_file_transforms``) and the model's data preprocessor, as ``quantization.calibration_inputs``
    prepares the train images. Every image must come out at the config's fixed input size (the graph's), e.g.
    resized to it beforehand where the pipeline does not resize."""
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    with DefaultScope.overwrite_default_scope(config_host(cfg).scope):
        pipeline = Compose(image_file_transforms(cfg))
        preprocessor = MODELS.build(cfg.model.data_preprocessor)
    if not images:
        raise ValueError('images must name at least one image file to calibrate on, got none')
    inputs = network_inputs(preprocessor, (pipeline(dict(img_path=path, img_id=i)) for i, path in enumerate(images)))
    size = tuple(fixed_input_size(cfg))
    for path, batch in zip(images, inputs, strict=True):
        if tuple(batch.shape[2:]) != size:
            raise ValueError(f'{path}: comes out of the test pipeline at {batch.shape[2]}x{batch.shape[3]}, not at the '
                             f'config\'s input size {size[0]}x{size[1]}; resize the calibration images to it')
    return inputs


def quantize_mobile_on_images(config: Union[str, Config], checkpoint: str, fmt: str, out_file: str,
                              images: Sequence[str], float_modules: Sequence[str] = ()) -> str:
    """``quantize_mobile`` calibrated on the image files ``images`` (``image_inputs``) instead of the config's train
    set; returns ``out_file``. No accuracy guard: there is no val set to score on."""
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    return quantize_mobile(cfg, checkpoint, fmt, out_file, image_inputs(cfg, images), float_modules)
