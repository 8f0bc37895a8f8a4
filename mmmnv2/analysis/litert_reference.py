"""Google's float Mobile DeepLabv3 ``.tflite`` file in LiteRT, the reference our converted model is compared with,
and the pixel agreement of our label maps with its output on real photos."""
import os.path as osp
from typing import Callable, Dict, Sequence

import numpy as np
import torch
from mmengine.model import BaseModel

from ..utils import import_optional


def square_rgb(path: str, size: int) -> np.ndarray:
    """The photo resized to size x size (bilinear), RGB uint8: the input LiteRT and our model both read."""
    import mmcv
    return mmcv.imresize(mmcv.imread(path, channel_order='rgb'), (size, size), interpolation='bilinear')


class LiteRTModel:
    """A float ``.tflite`` segmentation file in LiteRT: RGB uint8 -> [-1, 1] float input -> logits (H, W, classes).

    The scaling to [-1, 1] is TF DeepLab's preprocessing (``deeplab/core/preprocess_utils.py``), which Google's
    Mobile DeepLabv3 files expect.
    """

    def __init__(self, tflite_file: str, threads: int) -> None:
        interpreter = import_optional('ai_edge_litert.interpreter', 'benchmark', 'the LiteRT comparison').Interpreter
        self.interpreter = interpreter(model_path=tflite_file, num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.input_size = tuple(int(s) for s in self.input['shape'][1:3])

    def random_input(self) -> np.ndarray:
        """A float input in [-1, 1] of the file's input shape (for timing: NHWC for Google's files, NCHW for ours)."""
        return (np.random.RandomState(0).rand(*self.input['shape']) * 2 - 1).astype(np.float32)

    def invoke(self, inputs: np.ndarray) -> np.ndarray:
        """The logits for one float input (1, H, W, 3) already scaled to [-1, 1] (or of the file's own input
        shape)."""
        self.interpreter.set_tensor(self.input['index'], inputs)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output['index'])[0]

    def labels(self, image: np.ndarray) -> np.ndarray:
        """The argmax label map of an RGB uint8 image of the file's input size."""
        return self.invoke((image.astype(np.float32) / 127.5 - 1)[None]).argmax(-1)


def predicted_labels(model: BaseModel, pipeline: Callable[[dict], dict], image: np.ndarray) -> np.ndarray:
    """The label map our model (PyTorch or a runner) predicts for an RGB uint8 image, through the test pipeline
    (without file loading, ``mmmnv2.analysis.benchmark.test_pipeline``)."""
    height, width = image.shape[:2]
    packed = pipeline(dict(img=np.ascontiguousarray(image[..., ::-1]), img_id=0, img_path=None,
                           img_shape=(height, width), ori_shape=(height, width)))  # the pipeline reads BGR
    with torch.no_grad():
        sample = model.test_step(dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]))[0]
    return sample.pred_sem_seg.data[0].numpy()


def label_agreement(model: BaseModel, pipeline: Callable[[dict], dict], reference: LiteRTModel,
                    photos: Sequence[str]) -> Dict[str, float]:
    """For each photo (resized to the file's input size): the fraction of pixels where our model's label map equals
    the argmax of the reference's float output."""
    size = reference.input_size[0]
    agreement = {}
    for path in photos:
        image = square_rgb(path, size)
        ours = predicted_labels(model, pipeline, image)
        agreement[osp.basename(path)] = float((ours == reference.labels(image)).mean())
    return agreement
