"""Export a detector or segmentor of an mmmnv2 config to ONNX.

The graph is the network only, batch norm folded into the convolutions: images in, the same tensors as the model's
``mode='tensor'`` out (detection: per-level class scores and box deltas; segmentation: the decode head's logits).
Anchor decoding + NMS (detection) and resizing to the image + argmax (segmentation) run after the graph, in the
host's own code, in the runners (``ExportedDetector`` / ``ExportedSegmentor``), so an exported model's results
are computed exactly as the PyTorch evaluation computes them.
With ``postprocess=True`` the graph ends with that post-processing instead, as ONNX operators
(``postprocess_graph``), with the config's ``test_cfg`` written into it and its settings into the file's metadata.
"""
import copy
import json
import re
from typing import Dict, Optional, Tuple, Union

import torch
from mmengine.config import Config
from torch import nn

from ..utils import (
    config_host,
    drop_pretrained,
    fixed_input_size,
    fuse_conv_bn_layers,
    init_pytorch_model,
    make_output_folder,
    refuse_overwriting_inputs,
    replace_when_written,
)
from .graph_format import (
    INPUT_NAME,
    META_DATASET_META,
    META_HOST,
    META_MODEL_SETTINGS,
    META_POSTPROCESS,
    META_PREPROCESS,
    check_model_settings,
    flatten_outputs,
    import_deploy_dependency,
    metadata_json,
    model_settings,
    output_names,
)
from .image_graph import DetectionResults, ImageInput, LabelMap, preprocess_settings

# (anchor, class) pairs the PyTorch post-processing of .tflite / .pte files runs NMS over (image_graph)
DEFAULT_CANDIDATES = 300
NMS_ROUNDS = 24  # rounds of its NMS (image_graph.DetectionResults)


class UnsupportedOperatorError(RuntimeError):
    """The model uses an operator that ONNX cannot express."""


class Network(nn.Module):
    """Images -> the model's ``mode='tensor'`` outputs as a flat tuple (``graph_format.flatten_outputs``).

    Detector: class scores per level, then box deltas per level; segmentor: the decode head's logits. With
    ``image_input`` (``image_graph.ImageInput``) it takes a uint8 image instead of the network's input; with
    ``results`` (``image_graph.DetectionResults`` / ``LabelMap``) it returns their results instead of the outputs.
    """

    def __init__(self, model: nn.Module, image_input: Optional[nn.Module] = None,
                 results: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.model, self.image_input, self.results = model, image_input, results

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if self.image_input is not None:
            inputs = self.image_input(inputs)
        outputs = self.model(inputs, mode='tensor')
        if self.results is not None:
            return tuple(self.results(outputs) if torch.is_tensor(outputs) else self.results(*outputs))
        return tuple(flatten_outputs(outputs))


def exportable_network(config: Union[str, Config], checkpoint: Optional[str], preprocess: bool = False,
                       image_size: Optional[Tuple[int, int]] = None, postprocess: bool = False,
                       candidates: int = 0) -> Tuple[nn.Module, Network, Dict[str, str], torch.Tensor]:
    """(the config's model with the checkpoint's weights, batch norm folded; its ``Network``; the metadata every
    exported file carries: ``META_HOST``, ``META_DATASET_META`` and ``META_MODEL_SETTINGS``, the settings the file is
    only right with; an example input). The model has ``cfg`` and ``dataset_meta``.

    ``preprocess``: the network takes a uint8 image of ``image_size`` (``image_graph``; settings in
    ``META_PREPROCESS``), else the network's float input at the config's fixed size. ``postprocess``: it ends with
    the PyTorch post-processing of ``image_graph`` (detection: NMS over the best ``candidates`` pairs; segmentation
    needs ``preprocess``: the label map's size is the image's), settings in ``META_POSTPROCESS``.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    host = config_host(cfg)
    model = init_pytorch_model(cfg, checkpoint, 'cpu')
    metadata = {META_HOST: host.scope, META_DATASET_META: json.dumps(model.dataset_meta, default=list),
                META_MODEL_SETTINGS: json.dumps(model_settings(cfg.model))}
    fuse_conv_bn_layers(model)  # folds every BatchNorm that follows a convolution into its weights
    input_size = fixed_input_size(cfg)
    if image_size is not None and not preprocess:
        raise ValueError('image_size is the size of the image a file with the pre-processing takes; it needs '
                         'preprocess=True (the network\'s own input size is input_size)')
    image_input, settings = None, None
    example = torch.zeros(1, 3, *input_size)
    if preprocess:
        settings = preprocess_settings(cfg, image_size)
        image_input = ImageInput(settings)
        metadata[META_PREPROCESS] = json.dumps(settings)
        example = torch.zeros(1, *settings['image_size'], 3, dtype=torch.uint8)
    results = None
    if postprocess:
        results, post_settings = result_module(model, input_size, settings, candidates)
        metadata[META_POSTPROCESS] = json.dumps(post_settings)
    return model, Network(model, image_input, results).eval(), metadata, example


def result_module(model: nn.Module, input_size: Tuple[int, int], preprocess: Optional[Dict], candidates: int
                  ) -> Tuple[nn.Module, Dict]:
    """The PyTorch post-processing of ``image_graph`` for ``model`` and the settings the file records."""
    from .postprocess_graph import detection_settings, image_crop, segmentation_settings
    if hasattr(model, 'bbox_head'):
        head = model.bbox_head
        with torch.no_grad():
            cls_scores, _ = model(torch.zeros(1, 3, *input_size), mode='tensor')
        settings = dict(detection_settings(head, head.test_cfg), task='detection')
        scale = preprocess['scale_factor'] if preprocess else None
        results = DetectionResults(head, settings, input_size, [tuple(s.shape[2:]) for s in cls_scores],
                                   candidates or DEFAULT_CANDIDATES, NMS_ROUNDS, scale)
        return results, dict(settings, candidates=results.candidates, rounds=results.rounds)
    if preprocess is None:
        raise ValueError('a segmentor\'s post-processing in a .tflite or .pte file needs the pre-processing too '
                         '(preprocess=True): the label map\'s size is the image\'s, fixed in the file')
    settings = dict(segmentation_settings(model), task='segmentation')
    with torch.no_grad():
        logits_size = tuple(model(torch.zeros(1, 3, *input_size), mode='tensor').shape[2:])
    return LabelMap(settings, logits_size, input_size, image_crop(preprocess, input_size),
                    tuple(preprocess['image_size'])), settings


def export_onnx(config: Union[str, Config], checkpoint: Optional[str], out_file: str,
                input_size: Optional[Tuple[int, int]] = None, dynamic_batch: bool = False,
                postprocess: bool = False, preprocess: bool = False,
                image_size: Optional[Tuple[int, int]] = None) -> str:
    """Export the config's model with the checkpoint's weights to ``out_file``; returns ``out_file``.

    ``input_size``: (height, width), by default the config's test size (``fixed_input_size``). ``dynamic_batch``:
    the batch dimension is left free (otherwise 1). ``checkpoint=None`` exports random weights (benchmarks).
    ``postprocess``: the graph ends with the post-processing (``postprocess_graph``: decoding + NMS with the config's
    ``test_cfg`` for detection, resizing + argmax to uint8 labels for segmentation), recorded in the file's
    metadata so that the runners use it. ``preprocess``: the graph takes one uint8 RGB image (1, H, W, 3) of
    ``image_size`` (default: the input size) and resizes, normalises and pads it as the config's test pipeline
    (``image_graph``); with ``postprocess`` too, boxes are in the image's pixels and label maps of the image's size.
    """
    onnx = import_deploy_dependency('onnx')
    import_deploy_dependency('onnxscript')  # torch's ONNX exporter translates through it
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    if preprocess and (dynamic_batch or (input_size and tuple(input_size) != fixed_input_size(cfg))):
        raise ValueError('preprocess=True exports one image at a time at the config\'s input size '
                         f'{fixed_input_size(cfg)}: give neither dynamic_batch nor another input_size')
    refuse_overwriting_inputs(out_file, (checkpoint, cfg.filename), 'ONNX file')
    make_output_folder(out_file)  # fail before the export, not after it
    model, network, metadata, example = exportable_network(cfg, checkpoint, preprocess, image_size)
    height, width = input_size or fixed_input_size(cfg)

    if not preprocess:  # an example batch of 2 keeps torch.export from specialising a dynamic batch dimension to 1
        example = torch.zeros(2 if dynamic_batch else 1, 3, height, width)
    with torch.no_grad():
        names = output_names(model(torch.zeros(1, 3, height, width), mode='tensor'))
    dynamic_shapes = ({0: torch.export.Dim('batch', min=1, max=1024)},) if dynamic_batch else None
    with torch.no_grad():
        program = torch.export.export(network, (example,), dynamic_shapes=dynamic_shapes, strict=False)
        try:
            exported = torch.onnx.export(program, (example,), input_names=[INPUT_NAME],
                                         output_names=list(names), dynamo=True, verbose=False)
        except Exception as error:  # the exporter raises its own error types; name the operator and module
            raise UnsupportedOperatorError(describe_export_failure(error, program)) from error
    model_proto = exported.model_proto
    if dynamic_batch:  # name the exporter's symbol for the batch dimension plainly
        symbol = model_proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param
        for value in (*model_proto.graph.input, *model_proto.graph.output, *model_proto.graph.value_info):
            for dim in value.type.tensor_type.shape.dim:
                if dim.dim_param == symbol:
                    dim.dim_param = 'batch'
    del model_proto.metadata_props[:]
    for key, value in metadata.items():
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = key, value
    left = sorted({node.op_type for node in model_proto.graph.node} & {'BatchNormalization'})
    if left:
        raise RuntimeError(f'batch norm was not folded: {left} left in the graph')
    if postprocess:
        from .postprocess_graph import append_postprocess
        append_postprocess(model_proto, model, json.loads(metadata[META_PREPROCESS]) if preprocess else None)
    onnx.checker.check_model(model_proto)
    with replace_when_written(out_file) as temporary:
        onnx.save(model_proto, temporary)
    return out_file


def add_postprocess(config: Union[str, Config], onnx_file: str, out_file: str) -> str:
    """Append the config's post-processing to a network-only file of ``export_onnx``, without exporting again.

    The result is the graph ``export_onnx(..., postprocess=True)`` writes, with the ``test_cfg`` of ``config``
    (e.g. another ``score_thr``); returns ``out_file``.
    """
    onnx = import_deploy_dependency('onnx')
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    refuse_overwriting_inputs(out_file, (onnx_file, cfg.filename), 'ONNX file')
    host = config_host(cfg)
    model_proto = onnx.load(onnx_file)
    metadata = {entry.key: entry.value for entry in model_proto.metadata_props}
    if metadata.get(META_HOST) != host.scope:
        raise ValueError(f'{onnx_file} is not a network export_onnx wrote from a {host.scope} model (its host: '
                         f'{metadata.get(META_HOST)})')
    if META_POSTPROCESS in metadata:
        raise ValueError(f'{onnx_file} already ends with its post-processing')
    if META_MODEL_SETTINGS in metadata:  # the graph's outputs must be those the config's anchors and coder decode
        check_model_settings(onnx_file, metadata_json(onnx_file, metadata, META_MODEL_SETTINGS), cfg.model)
    drop_pretrained(cfg.model)
    model = init_pytorch_model(cfg, None, 'cpu')  # only the heads' settings, anchors and box coder are used
    from .postprocess_graph import append_postprocess
    append_postprocess(model_proto, model, metadata_json(onnx_file, metadata, META_PREPROCESS))
    onnx.checker.check_model(model_proto)
    with replace_when_written(out_file) as temporary:
        onnx.save(model_proto, temporary)
    return out_file


def describe_export_failure(error: Exception, program: 'torch.export.ExportedProgram') -> str:
    """'operator X in module Y (Class)': the operator the ONNX translation failed on, found in the exported graph."""
    message = str(error)
    found = re.search(r"OpOverload\(op='([\w.]+)', overload='(\w+)'\)", message)
    if found is None:
        return f'ONNX export failed: {message.strip().splitlines()[-1] if message.strip() else type(error)}'
    operator = f'{found.group(1)}.{found.group(2)}'
    for graph_program in (program, program.run_decompositions()):
        for node in graph_program.graph.nodes:
            if node.op == 'call_function' and str(node.target) == operator:
                stack = node.meta.get('nn_module_stack') or {}
                if stack:
                    path, module_type = list(stack.values())[-1]
                    path = re.sub(r'^model\.', '', str(path))
                    name = getattr(module_type, '__name__', str(module_type).split('.')[-1].strip("'>"))
                    return (f'ONNX export failed: operator {operator} in module {path} ({name}) has no ONNX '
                            f'equivalent in the exporter; replace the operator or the module')
    return f'ONNX export failed: operator {operator} has no ONNX equivalent in the exporter'
