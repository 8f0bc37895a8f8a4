"""Post-processing as ONNX operators, appended to the exported network (``export_onnx(..., postprocess=True)``).

Detection (``append_detection_postprocess``): what MMDetection's ``BaseDenseHead._predict_by_feat_single`` and
``_bbox_post_process`` do for an SSD head, with the config's ``test_cfg`` written into the graph:

- class scores: softmax over classes + background, background dropped (MMDetection's SSD); sigmoid, background
  dropped, for ``TFSigmoidClassificationLoss`` (TF's ``score_converter: SIGMOID``); plain sigmoid for a sigmoid
  ``CrossEntropyLoss``;
- per level, the (anchor, class) pairs scoring above ``score_thr``, at most ``nms_pre`` of them, highest first
  (MMDetection's ``filter_scores_and_topk``);
- ``DeltaXYWHBBoxCoder`` decoding with the head's means / stds, ``wh_ratio_clip`` and clipping to the input size;
  boxes of zero width or height dropped (``min_bbox_size`` 0);
- class-aware NMS (ONNX ``NonMaxSuppression``, IoU above ``nms.iou_threshold`` suppresses) and the ``max_per_img``
  best boxes. As MMCV's ``batched_nms`` does, each class's boxes are shifted by ``class * (largest coordinate + 1)``
  so that boxes of different classes never overlap, and one NMS runs over all (anchor, class) pairs. Greedy NMS in
  score order then keeps, in each class, exactly what a per-class NMS keeps, and stopping after ``max_per_img``
  selections returns the ``max_per_img`` best of the per-class results: TF's post-processing (at most 100 per class,
  100 in all) for ``max_per_img`` 100, at a fraction of the work of a per-class NMS with a per-class cap.

  Outputs: ``boxes`` (B, K, 4) x1 y1 x2 y2 in network-input pixels, ``scores`` (B, K), ``labels`` (B, K), K =
  ``max_per_img``, best first; slots without a box have label -1 and score 0. The runner rescales the boxes to the
  original image as ``_bbox_post_process`` does.

Segmentation (``append_segmentation_postprocess``): MMSegmentation's ``decode_head.predict_by_feat`` (bilinear
resize of the logits to the padded input size) and ``postprocess_result`` (crop of the padding, bilinear resize to
the original image, argmax over classes), with the decode head's ``align_corners``. Extra inputs ``crop`` (top,
left, bottom, right: the valid rows and columns of the padded input) and ``output_size`` (height, width); output
``seg_labels`` (B, 1, height, width) uint8.

The graphs use ONNX operators that onnxruntime and OpenVINO both run (opset 20 with the exporter's network).
"""
import json
import math
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .graph_format import META_POSTPROCESS, import_deploy_dependency
from .image_graph import label_map_matrices

if TYPE_CHECKING:  # onnx is an optional dependency (the runners import this module for its settings only)
    import onnx

# Graph names the exporter writes and the runners read.
DET_OUTPUT_NAMES = ('boxes', 'scores', 'labels')
SEG_CROP_NAME = 'crop'
SEG_OUTPUT_SIZE_NAME = 'output_size'
SEG_LABELS_NAME = 'seg_labels'
DEFAULT_WH_RATIO_CLIP = 16 / 1000  # MMDetection's delta2bbox default


def append_postprocess(model: 'onnx.ModelProto', host_model: torch.nn.Module,
                       preprocess: Optional[Dict] = None) -> Dict:
    """Append ``host_model``'s post-processing to its exported network ``model`` and record the settings in the
    file's metadata (``META_POSTPROCESS``, which tells the runners); returns the settings.

    ``preprocess``: the settings of the graph's own pre-processing (``image_graph.preprocess_settings``), if it has
    one: boxes are then given in the pixels of its input image, and label maps at its size, without extra inputs.
    """
    input_size = (tuple(preprocess['input_size']) if preprocess is not None
                  else tuple(static_dims(model.graph.input[0])[2:]))
    if hasattr(host_model, 'bbox_head'):
        head = host_model.bbox_head
        levels = head.prior_generator.num_levels
        outputs = list(model.graph.output)
        priors = list(head.num_base_priors)
        if len(outputs) != 2 * levels or any(static_dims(o)[1] != p * head.cls_out_channels
                                             for o, p in zip(outputs, priors, strict=False)):
            raise ValueError(f'the graph\'s outputs {[o.name for o in outputs]} are not the class scores and box '
                             f'deltas of the config\'s head ({levels} levels, {head.cls_out_channels} class outputs '
                             f'per anchor)')
        settings = dict(detection_settings(head, head.test_cfg), task='detection')
        append_detection_postprocess(model, head, settings, input_size,
                                     [tuple(static_dims(o)[2:]) for o in outputs[:levels]],
                                     preprocess['scale_factor'] if preprocess is not None else None)
    else:
        settings = dict(segmentation_settings(host_model), task='segmentation')
        outputs = list(model.graph.output)
        if len(outputs) != 1 or static_dims(outputs[0])[1] != settings['num_classes']:
            raise ValueError(f'the graph\'s outputs {[o.name for o in outputs]} are not the logits of the config\'s '
                             f'decode head ({settings["num_classes"]} classes)')
        append_segmentation_postprocess(model, settings, input_size, preprocess)
    entry = model.metadata_props.add()
    entry.key, entry.value = META_POSTPROCESS, json.dumps(settings)
    return settings


def static_dims(value: 'onnx.ValueInfoProto') -> List[int]:
    """A graph input's or output's dimensions (0 where dynamic)."""
    return [dim.dim_value for dim in value.type.tensor_type.shape.dim]


class GraphBuilder:
    """Appends nodes and constants to a graph under unique names (prefix ``post/``)."""

    def __init__(self, graph: 'onnx.GraphProto') -> None:
        self.onnx = import_deploy_dependency('onnx')
        self.graph = graph
        self.count = 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f'post/{hint}_{self.count}'

    def const(self, value, dtype=np.float32, hint: str = 'const') -> str:
        name = self.name(hint)
        self.graph.initializer.append(self.onnx.numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def ints(self, *values: int) -> str:
        return self.const(list(values), np.int64, 'ints')

    def op(self, op_type: str, *inputs: str, outputs: int = 1, out: Optional[str] = None, **attrs):
        names = [out] if out is not None else [self.name(op_type.lower()) for _ in range(outputs)]
        self.graph.node.append(self.onnx.helper.make_node(op_type, list(inputs), names, name=self.name(op_type),
                                                          **attrs))
        return names[0] if outputs == 1 else names


def score_activation(head) -> str:
    """'softmax' (background last, dropped), 'sigmoid_background' (TF: background last, dropped) or 'sigmoid'."""
    loss = getattr(head, 'loss_cls', None)
    if getattr(loss, 'custom_cls_channels', False):
        if type(loss).__name__ != 'TFSigmoidClassificationLoss':
            raise ValueError(f'postprocess=True: the head\'s loss_cls {type(loss).__name__} converts scores with its '
                             f'own get_activation, which the ONNX post-processing does not reproduce')
        return 'sigmoid_background'
    return 'sigmoid' if head.use_sigmoid_cls else 'softmax'


def detection_settings(head, test_cfg) -> Dict:
    """The values of the head and its ``test_cfg`` the graph is built from (also written to the file's metadata)."""
    coder = head.bbox_coder
    if type(coder).__name__ != 'DeltaXYWHBBoxCoder' or getattr(coder, 'add_ctr_clamp', False):
        raise ValueError(f'postprocess=True supports DeltaXYWHBBoxCoder without add_ctr_clamp; the head has '
                         f'{type(coder).__name__}')
    nms = dict(test_cfg.get('nms') or {})
    if nms.get('type', 'nms') != 'nms' or nms.get('class_agnostic', False):
        raise ValueError(f'postprocess=True supports test_cfg.nms of type "nms" (class-aware); got {nms}')
    nms_pre = int(test_cfg.get('nms_pre', -1))
    if nms_pre < 1:
        # MMDetection's filter_scores_and_topk with nms_pre=-1 drops the lowest-scoring candidate (a [:-1] slice).
        raise ValueError(f'postprocess=True needs test_cfg.nms_pre >= 1 (a large value for no cap), got {nms_pre}')
    min_bbox_size = float(test_cfg.get('min_bbox_size', -1))
    if min_bbox_size > 0:
        # MMDetection compares the sizes of boxes rescaled to the original image, which the graph does not know.
        raise ValueError(f'postprocess=True supports test_cfg.min_bbox_size 0 or none, got {min_bbox_size}')
    max_per_img = int(test_cfg.get('max_per_img', 0))
    if max_per_img < 1:
        raise ValueError(f'postprocess=True needs test_cfg.max_per_img >= 1, got {max_per_img}')
    return dict(activation=score_activation(head), num_classes=int(head.num_classes), nms_pre=nms_pre,
                score_thr=float(test_cfg.get('score_thr', 0)), iou_threshold=float(nms.get('iou_threshold', 0.5)),
                min_bbox_size=min_bbox_size, max_per_img=max_per_img, means=[float(m) for m in coder.means],
                stds=[float(s) for s in coder.stds], clip_border=bool(coder.clip_border),
                wh_ratio_clip=float(getattr(coder, 'wh_ratio_clip', DEFAULT_WH_RATIO_CLIP) or DEFAULT_WH_RATIO_CLIP))


def append_detection_postprocess(model: 'onnx.ModelProto', head, settings: Dict, input_size: Tuple[int, int],
                                 featmap_sizes: Sequence[Tuple[int, int]],
                                 box_scale: Optional[Sequence[float]] = None) -> None:
    """Replace the graph's outputs (class scores, box deltas per level) with (boxes, scores, labels); see module.
    ``box_scale``: (w, h) the boxes are divided by (the graph's own resize of its input image)."""
    graph = model.graph
    b = GraphBuilder(graph)
    TensorProto, helper = b.onnx.TensorProto, b.onnx.helper  # noqa: N806 (onnx's names)
    levels = len(featmap_sizes)
    cls_names = [o.name for o in graph.output[:levels]]
    box_names = [o.name for o in graph.output[levels:]]
    out_channels = head.cls_out_channels
    num_classes = settings['num_classes']
    height, width = input_size
    neg_inf = b.const(-np.inf)

    scores_per_level, deltas_per_level = [], []
    for level, (cls_name, box_name) in enumerate(zip(cls_names, box_names, strict=True)):
        # (B, A*C, H, W) -> (B, H*W*A, C): MMDetection's permute(1, 2, 0).reshape(-1, C) per image.
        logits = b.op('Reshape', b.op('Transpose', cls_name, perm=[0, 2, 3, 1]), b.ints(0, -1, out_channels))
        if settings['activation'] == 'softmax':
            scores = b.op('Softmax', logits, axis=-1)
        else:
            scores = b.op('Sigmoid', logits)
        if settings['activation'] != 'sigmoid':  # background is the last column
            scores = b.op('Slice', scores, b.ints(0), b.ints(num_classes), b.ints(2))
        # filter_scores_and_topk: pairs above score_thr, then at most nms_pre of them, highest first.
        flat = b.op('Reshape', scores, b.ints(0, -1))
        flat = b.op('Where', b.op('Greater', flat, b.const(settings['score_thr'])), flat, neg_inf)
        pairs = math.prod(featmap_sizes[level]) * head.num_base_priors[level] * num_classes
        if settings['nms_pre'] < pairs:
            values, indices = b.op('TopK', flat, b.ints(settings['nms_pre']), outputs=2, axis=1, largest=1, sorted=0)
            flat = b.op('ScatterElements', b.op('Expand', neg_inf, b.op('Shape', flat)), indices, values, axis=1)
        scores_per_level.append(b.op('Reshape', flat, b.ints(0, -1, num_classes)))
        deltas_per_level.append(b.op('Reshape', b.op('Transpose', box_name, perm=[0, 2, 3, 1]), b.ints(0, -1, 4)))
    scores = b.op('Concat', *scores_per_level, axis=1)  # (B, N, C)
    deltas = b.op('Concat', *deltas_per_level, axis=1)  # (B, N, 4)

    # DeltaXYWHBBoxCoder.decode (mmdet delta2bbox), anchors as constants.
    priors = torch.cat(head.prior_generator.grid_priors(featmap_sizes, device='cpu')).numpy()
    anchor_xy = b.const((priors[:, :2] + priors[:, 2:]) * 0.5)
    anchor_wh = b.const(priors[:, 2:] - priors[:, :2])
    deltas = b.op('Add', b.op('Mul', deltas, b.const(settings['stds'])), b.const(settings['means']))
    delta_xy = b.op('Slice', deltas, b.ints(0), b.ints(2), b.ints(2))
    delta_wh = b.op('Slice', deltas, b.ints(2), b.ints(4), b.ints(2))
    max_ratio = abs(math.log(settings['wh_ratio_clip']))
    delta_wh = b.op('Clip', delta_wh, b.const(-max_ratio), b.const(max_ratio))
    centre = b.op('Add', anchor_xy, b.op('Mul', anchor_wh, delta_xy))
    half = b.op('Mul', b.op('Mul', anchor_wh, b.op('Exp', delta_wh)), b.const(0.5))
    boxes = b.op('Concat', b.op('Sub', centre, half), b.op('Add', centre, half), axis=2)  # (B, N, 4)
    if settings['clip_border']:
        boxes = b.op('Max', b.op('Min', boxes, b.const([width, height, width, height])), b.const(0.0))
    if settings['min_bbox_size'] >= 0:  # _bbox_post_process drops boxes of width or height <= min_bbox_size
        sizes = b.op('Sub', b.op('Slice', boxes, b.ints(2), b.ints(4), b.ints(2)),
                     b.op('Slice', boxes, b.ints(0), b.ints(2), b.ints(2)))
        large = b.op('ReduceMin', b.op('Cast', b.op('Greater', sizes, b.const(settings['min_bbox_size'])),
                                       to=TensorProto.INT64), b.ints(2), keepdims=1)  # (B, N, 1)
        scores = b.op('Where', b.op('Cast', large, to=TensorProto.BOOL), scores, neg_inf)

    # Class-aware NMS as one NMS over class-shifted boxes (see module). Pairs class-major, pair = class * N + anchor:
    # each class's N boxes are then one contiguous block plus a scalar shift, which runtimes broadcast fast (an
    # anchor-major layout made this Add the slowest operator of the post-processing in onnxruntime).
    num_anchors = int(priors.shape[0])
    offset = b.op('Add', b.op('ReduceMax', boxes, keepdims=0), b.const(1.0))
    shifts = b.op('Mul', b.const(np.arange(num_classes, dtype=np.float32)[:, None, None]), offset)  # (C, 1, 1)
    shifted = b.op('Add', b.op('Unsqueeze', boxes, b.ints(1)), shifts)  # (B, C, N, 4)
    shifted = b.op('Reshape', shifted, b.ints(0, -1, 4))
    pair_scores = b.op('Reshape', b.op('Transpose', scores, perm=[0, 2, 1]), b.ints(0, -1))  # (B, C*N)
    selected = b.op('NonMaxSuppression', shifted, b.op('Unsqueeze', pair_scores, b.ints(1)),
                    b.ints(settings['max_per_img']), b.const([settings['iou_threshold']]),
                    b.const([settings['score_thr']]), center_point_box=0)
    # The selected pairs' scores into an otherwise empty (B, C*N) map, then the best max_per_img per image, in
    # descending score order (the NMS output's order is left to the runtime).
    batch_and_pair = b.op('Gather', selected, b.ints(0, 2), axis=1)  # (K, 2)
    kept = b.op('ScatterND', b.op('Expand', neg_inf, b.op('Shape', pair_scores)), batch_and_pair,
                b.op('GatherND', pair_scores, batch_and_pair))
    top_scores, top_pairs = b.op('TopK', kept, b.ints(min(settings['max_per_img'], num_anchors * num_classes)),
                                 outputs=2, axis=1, largest=1, sorted=1)
    found = b.op('Greater', top_scores, neg_inf)
    labels = b.op('Div', top_pairs, b.ints(num_anchors))
    anchors = b.op('Mod', top_pairs, b.ints(num_anchors))
    top_boxes = b.op('GatherND', boxes, b.op('Unsqueeze', anchors, b.ints(2)), batch_dims=1)  # (B, K, 4)
    if box_scale is not None:
        top_boxes = b.op('Div', top_boxes, b.const(list(box_scale) * 2))
    del graph.output[:]
    b.op('Where', b.op('Unsqueeze', found, b.ints(2)), top_boxes, b.const(0.0), out=DET_OUTPUT_NAMES[0])
    b.op('Where', found, top_scores, b.const(0.0), out=DET_OUTPUT_NAMES[1])
    b.op('Where', found, labels, b.ints(-1), out=DET_OUTPUT_NAMES[2])
    graph.output.extend([
        helper.make_tensor_value_info(DET_OUTPUT_NAMES[0], TensorProto.FLOAT, ['batch', 'detections', 4]),
        helper.make_tensor_value_info(DET_OUTPUT_NAMES[1], TensorProto.FLOAT, ['batch', 'detections']),
        helper.make_tensor_value_info(DET_OUTPUT_NAMES[2], TensorProto.INT64, ['batch', 'detections'])])


def segmentation_settings(segmentor) -> Dict:
    """The decode head's values the graph is built from (also written to the file's metadata)."""
    head = segmentor.decode_head
    if head.out_channels < 2:
        raise ValueError('postprocess=True supports multi-class decode heads (out_channels >= 2); a binary head '
                         'thresholds a sigmoid instead of taking an argmax')
    if head.out_channels > 256:
        raise ValueError(f'postprocess=True writes uint8 labels; the decode head has {head.out_channels} classes')
    return dict(num_classes=int(head.out_channels), align_corners=bool(head.align_corners))


def append_segmentation_postprocess(model: 'onnx.ModelProto', settings: Dict, input_size: Tuple[int, int],
                                    preprocess: Optional[Dict] = None) -> None:
    """Replace the logits output with uint8 labels at ``output_size``, adding the ``crop`` and ``output_size``
    inputs; see module. With the graph's own pre-processing (``preprocess``) both are constants: the resized image's
    place in the padded input and the input image's size."""
    graph = model.graph
    b = GraphBuilder(graph)
    TensorProto, helper = b.onnx.TensorProto, b.onnx.helper  # noqa: N806 (onnx's names)
    logits = graph.output[0].name
    if preprocess is not None:  # static sizes: the resizings and the crop as one matrix product per axis
        classes, height, width = static_dims(graph.output[0])[1:]
        output_size = tuple(preprocess['image_size'])
        rows, columns = label_map_matrices(settings['align_corners'], (height, width), input_size,
                                           image_crop(preprocess, input_size), output_size)
        x = b.op('Reshape', b.op('Transpose', logits, perm=[0, 2, 3, 1]), b.ints(height, width * classes))
        x = b.op('Reshape', b.op('MatMul', b.const(rows.numpy(), hint='rows'), x), b.ints(-1, width, classes))
        x = b.op('MatMul', b.const(columns.numpy(), hint='columns'), x)
        labels = b.op('Reshape', b.op('ArgMax', x, axis=2, keepdims=0), b.ints(1, 1, *output_size))
    else:
        mode = 'align_corners' if settings['align_corners'] else 'pytorch_half_pixel'  # F.interpolate's mapping
        crop, output_size = SEG_CROP_NAME, SEG_OUTPUT_SIZE_NAME
        batch_channels = b.op('Slice', b.op('Shape', logits), b.ints(0), b.ints(2))
        padded = b.op('Resize', logits, '', '', b.op('Concat', batch_channels, b.ints(*input_size), axis=0),
                      mode='linear', coordinate_transformation_mode=mode)
        cropped = b.op('Slice', padded, b.op('Slice', crop, b.ints(0), b.ints(2)),
                       b.op('Slice', crop, b.ints(2), b.ints(4)), b.ints(2, 3))
        resized = b.op('Resize', cropped, '', '', b.op('Concat', batch_channels, output_size, axis=0),
                       mode='linear', coordinate_transformation_mode=mode)
        labels = b.op('ArgMax', resized, axis=1, keepdims=1)
    del graph.output[:]
    b.op('Cast', labels, to=TensorProto.UINT8, out=SEG_LABELS_NAME)
    if preprocess is None:
        graph.input.extend([helper.make_tensor_value_info(SEG_CROP_NAME, TensorProto.INT64, [4]),
                            helper.make_tensor_value_info(SEG_OUTPUT_SIZE_NAME, TensorProto.INT64, [2])])
    graph.output.append(helper.make_tensor_value_info(SEG_LABELS_NAME, TensorProto.UINT8,
                                                      ['batch', 1, 'height', 'width']))


def image_crop(preprocess: Dict, input_size: Tuple[int, int]) -> List[int]:
    """(top, left, bottom, right) of the resized image inside the padded input of a graph with its own
    pre-processing (padded bottom and right)."""
    height, width = preprocess['resized_shape']
    return crop_box(dict(padding_size=[0, input_size[1] - width, 0, input_size[0] - height]), input_size)


def crop_box(meta: dict, input_size: Tuple[int, int]) -> List[int]:
    """(top, left, bottom, right) of the image inside the padded input, from MMSegmentation's padding metadata."""
    left, right, top, bottom = meta.get('img_padding_size', meta.get('padding_size', [0, 0, 0, 0]))
    return [int(top), int(left), input_size[0] - int(bottom), input_size[1] - int(right)]


def check_settings(onnx_file: str, found: Dict, expected: Dict, what: str = 'post-processing') -> None:
    """Refuse a file whose ``what`` (its post-processing, or pre-processing) differs from the config model's."""
    differing = {key: (found.get(key), value) for key, value in expected.items() if found.get(key) != value}
    if differing:
        described = ', '.join(f'{key}: {a!r} in the file, {b!r} in the config' for key, (a, b) in differing.items())
        raise ValueError(f'{onnx_file} was exported with another {what} than the config\'s ({described}); '
                         f'export it again with this config')
