"""A fixed-size resize that samples as TF1's ``tf.image.resize_bilinear`` (the TF Object Detection API's graphs).

Google's exported SSDLite graph (``ssdlite_mobilenet_v2_coco``, ``fixed_shape_resizer`` 300x300) resizes with
``ResizeBilinear`` at ``align_corners=False, half_pixel_centers=False``: output pixel ``i`` reads the input at
``i * in_size / out_size`` (TF's ``LegacyScaler``), the top-left corners of the pixels aligned. cv2 and mmcv sample
at pixel centres (``(i + 0.5) * in / out - 0.5``), a shift of up to half an input pixel, so a model trained in TF
sees other pixels through mmcv's ``Resize``. This transform is MMDetection's ``Resize`` without keeping the aspect
ratio (the boxes, ``scale_factor`` and ``img_shape`` as it sets them) with the image sampled as TF samples it, in
float32 as TF computes it (``resize_bilinear_op.cc``: top = tl + (tr - tl) * dx, bottom likewise, out = top +
(bottom - top) * dy); the output stays float32, as TF's.
"""
import numpy as np
from mmdet.datasets.transforms import Resize

from mmmnv2.registry import TRANSFORMS


def tf_legacy_resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` (H, W[, C]) resized to (height, width) as TF1's ``resize_bilinear`` (no half-pixel centres)."""
    in_height, in_width = image.shape[:2]
    source = image.astype(np.float32)

    def axis(in_size: int, out_size: int):
        position = np.arange(out_size, dtype=np.float32) * np.float32(in_size / out_size)
        lower = np.floor(position).astype(np.int64)
        upper = np.minimum(lower + 1, in_size - 1)
        return lower, upper, (position - lower).astype(np.float32)

    y0, y1, dy = axis(in_height, height)
    x0, x1, dx = axis(in_width, width)
    if image.ndim == 3:
        dx = dx[:, None]
    top_left, top_right = source[y0][:, x0], source[y0][:, x1]
    bottom_left, bottom_right = source[y1][:, x0], source[y1][:, x1]
    top = top_left + (top_right - top_left) * dx
    bottom = bottom_left + (bottom_right - bottom_left) * dx
    dy = dy.reshape((-1,) + (1,) * (image.ndim - 1))
    return top + (bottom - top) * dy


@TRANSFORMS.register_module()
class TFLegacyResize(Resize):
    """MMDetection's ``Resize`` to a fixed ``scale`` (w, h) with TF1's bilinear sampling (see the module).

    Args:
        scale: Output (width, height), or one int for a square.
        clip_object_border: As for ``Resize``.
    """

    def __init__(self, scale, clip_object_border: bool = True) -> None:
        if scale is None:
            raise ValueError('scale must be given: the fixed (width, height) of the output')
        super().__init__(scale=scale, keep_ratio=False, clip_object_border=clip_object_border)

    def _resize_img(self, results: dict) -> None:
        if results.get('img', None) is None:
            return
        width, height = results['scale']
        in_height, in_width = results['img'].shape[:2]
        results['img'] = tf_legacy_resize_bilinear(results['img'], height, width)
        results['img_shape'] = (height, width)
        results['scale_factor'] = (width / in_width, height / in_height)
        results['keep_ratio'] = False
