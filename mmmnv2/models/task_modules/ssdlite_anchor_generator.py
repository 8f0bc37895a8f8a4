"""The TF Object Detection API's SSD anchors (``create_ssd_anchors``), as used by the paper's SSDLite (Sec. 6.2).

Six layers with scales linear from ``min_scale`` to ``max_scale`` (0.2 .. 0.95), aspect ratios {1, 2, 1/2, 3, 1/3}
plus one box of scale sqrt(s_i * s_{i+1}) at ratio 1 (the last layer interpolates towards 1.0); the lowest layer
is reduced to 3 boxes: (0.1, 1), (s_0, 2), (s_0, 1/2). Scales are fractions of the input size; anchors of a
``h x w`` map are centred at ((j + 0.5) / w, (i + 0.5) / h) of the input, so strides need not be integers
(320 / 3 on the 3x3 map). MMDetection's ``SSDAnchorGenerator`` derives sizes from ``basesize_ratio_range`` and
integer strides instead, so it cannot express this layout.

TF's aspect ratio is width / height; MMDetection's ``ratios`` are height / width: boxes here are built directly
from TF's definition (width = s * sqrt(ar), height = s / sqrt(ar)).
"""
import math
from typing import List, Sequence, Tuple

import torch
from mmdet.models.task_modules.prior_generators import AnchorGenerator
from torch import Tensor

from mmmnv2.registry import TASK_UTILS


def ssd_box_specs(num_layers: int = 6, min_scale: float = 0.2, max_scale: float = 0.95,
                  aspect_ratios: Sequence[float] = (1.0, 2.0, 0.5, 3.0, 1.0 / 3),
                  interpolated_scale_aspect_ratio: float = 1.0,
                  reduce_boxes_in_lowest_layer: bool = True) -> List[List[Tuple[float, float]]]:
    """(scale, aspect ratio) of every box of every layer, as TF's ``create_ssd_anchors``."""
    scales = [min_scale + (max_scale - min_scale) * i / (num_layers - 1) for i in range(num_layers)] + [1.0]
    specs = []
    for layer, (scale, next_scale) in enumerate(zip(scales[:-1], scales[1:])):
        if layer == 0 and reduce_boxes_in_lowest_layer:
            specs.append([(0.1, 1.0), (scale, 2.0), (scale, 0.5)])
            continue
        boxes = [(scale, ratio) for ratio in aspect_ratios]
        if interpolated_scale_aspect_ratio > 0:
            boxes.append((math.sqrt(scale * next_scale), interpolated_scale_aspect_ratio))
        specs.append(boxes)
    return specs


def ssd_feature_sizes(input_size: int, num_layers: int = 6, first_stride: int = 16) -> List[int]:
    """Map sizes of the SSDLite pyramid: input / 16 (``layer_15/expansion_output``), then halved with 'SAME'
    rounding (ceil) by layer_19 and each stride-2 extra layer: 320 -> 20, 10, 5, 3, 2, 1."""
    sizes = [math.ceil(input_size / first_stride)]
    while len(sizes) < num_layers:
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes


@TASK_UTILS.register_module()
class SSDLiteAnchorGenerator(AnchorGenerator):
    """TF Object Detection API SSD anchors (paper Sec. 6.2; TF ``ssdlite_mobilenet_v2_coco.config``).

    Args:
        input_size: Side of the square network input in pixels (the paper: 320).
        num_layers, min_scale, max_scale, aspect_ratios, interpolated_scale_aspect_ratio,
        reduce_boxes_in_lowest_layer: TF's ``ssd_anchor_generator`` fields, with the recipe's values.
    """

    def __init__(self,
                 input_size: int = 320,
                 num_layers: int = 6,
                 min_scale: float = 0.2,
                 max_scale: float = 0.95,
                 aspect_ratios: Sequence[float] = (1.0, 2.0, 0.5, 3.0, 1.0 / 3),
                 interpolated_scale_aspect_ratio: float = 1.0,
                 reduce_boxes_in_lowest_layer: bool = True,
                 use_box_type: bool = False) -> None:
        if not (isinstance(input_size, int) and input_size > 0):
            raise ValueError(f'input_size must be a positive integer, got {input_size!r}')
        if not 0 < min_scale < max_scale:
            raise ValueError(f'min_scale and max_scale must satisfy 0 < min_scale < max_scale, '
                             f'got {min_scale!r} and {max_scale!r}')
        self.input_size = input_size
        self.box_specs = ssd_box_specs(num_layers, min_scale, max_scale, aspect_ratios,
                                       interpolated_scale_aspect_ratio, reduce_boxes_in_lowest_layer)
        self.feature_sizes = ssd_feature_sizes(input_size, num_layers)
        strides = [(input_size / size, input_size / size) for size in self.feature_sizes]
        # Boxes come from box_specs (gen_base_anchors below); the base class's scales and ratios are unused.
        super().__init__(strides=strides, ratios=[1.0], scales=[1.0],
                         centers=[(stride_w / 2, stride_h / 2) for stride_w, stride_h in strides],
                         use_box_type=use_box_type)

    def gen_base_anchors(self) -> List[Tensor]:
        anchors = []
        for (cx, cy), boxes in zip(self.centers, self.box_specs):
            scale, ratio = torch.tensor(boxes, dtype=torch.float64).T
            widths = scale * ratio.sqrt() * self.input_size
            heights = scale / ratio.sqrt() * self.input_size
            anchors.append(torch.stack([cx - widths / 2, cy - heights / 2, cx + widths / 2, cy + heights / 2],
                                       dim=-1).float())
        return anchors

    def grid_priors(self, featmap_sizes: List[Tuple[int, int]], dtype: torch.dtype = torch.float32,
                    device='cuda') -> List[Tensor]:
        sizes = [tuple(int(v) for v in size) for size in featmap_sizes]
        expected = [(s, s) for s in self.feature_sizes]
        if sizes != expected:
            raise ValueError(f'SSDLiteAnchorGenerator(input_size={self.input_size}) expects feature maps {expected}, '
                             f'got {sizes}: set input_size to the network input size')
        return super().grid_priors(featmap_sizes, dtype=dtype, device=device)

    def single_level_valid_flags(self, featmap_size: Tuple[int, int], valid_size: Tuple[int, int],
                                 num_base_anchors: int, device='cuda') -> Tensor:
        # TF uses every anchor, including those whose centre lies in padding.
        return torch.ones(featmap_size[0] * featmap_size[1] * num_base_anchors, dtype=torch.bool, device=device)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(input_size={self.input_size}, '
                f'feature_sizes={self.feature_sizes}, box_specs={self.box_specs})')
