"""Inference on image files with a config of ``configs/`` and a PyTorch checkpoint or an exported model (ONNX, LiteRT,
ExecuTorch).

The hosts' own pieces do the work: the config's test pipeline (annotation loading removed), the model's
``test_step``. What this adds to MMDetection's ``DetInferencer`` and MMSegmentation's
``MMSegInferencer``: one entry point for both hosts and for exported files (the runner is just another model with
``test_step``), checkpoint loading that refuses code, class names from the config where the checkpoint has none (the
inferencers fall back to COCO's or Cityscapes' names), result files named after their images (``MMSegInferencer``
numbers them), and one picture layout for both hosts (``mmmnv2.visualization``).

Results, under ``out_dir`` (layout of ``DetInferencer``'s ``vis/`` and ``preds/``):

- ``vis/<image file name>``: the picture of the predictions (``mmmnv2.visualization.draw_sample``: boxes with class
  names and scores / label map tinted over the image, background left clear; a legend of the classes).
- ``preds/<image name>.json``: ``img_path``, ``height``, ``width``; detection: ``bboxes`` (x1, y1, x2, y2 in the
  image's pixels), ``labels`` (class ids), ``label_names``, ``scores``, every detection the model keeps (as
  ``DetInferencer``: the score threshold applies to the picture only); segmentation: ``sem_seg_path`` and
  ``pixel_counts`` (class name -> number of pixels).
- segmentation: ``preds/<image name>.png``, the label map (class ids) at the image's size.
"""
import copy
import os
import os.path as osp
import warnings
from collections import Counter
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import mmcv
import mmengine
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmengine.structures import BaseDataElement
from PIL import Image, UnidentifiedImageError

from mmmnv2.deployment import EXPORTED_EXTENSIONS, init_exported_model
from mmmnv2.utils import config_host, image_file_transforms, init_pytorch_model, replace_when_written, write_image
from mmmnv2.visualization import draw_sample

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
CHECKPOINT_EXTENSIONS = ('.pth', '.pt')
# Images declaring more pixels than this are refused before decoding: well above any camera's (a 100 MP image
# decodes to 300 MB), far below what a crafted header can ask for (30000 x 30000 x 3 bytes: 2.7 GB, more to draw).
MAX_PIXELS = 100_000_000


def find_images(inputs: Sequence[str]) -> List[str]:
    """The image files named by ``inputs``: files, and the images directly inside folders (sorted).

    Raises FileNotFoundError for a missing path, ValueError for a file that is not an image, a folder without
    images, or two images of the same name (their results would overwrite each other).
    """
    images = []
    for path in inputs:
        if osp.isdir(path):
            found = sorted(osp.join(path, name) for name in os.listdir(path) if name.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                raise ValueError(f'No images ({", ".join(IMAGE_EXTENSIONS)}) in folder {path}')
            images += found
        elif not osp.exists(path):
            raise FileNotFoundError(f'Input not found: {path}')
        elif not path.lower().endswith(IMAGE_EXTENSIONS):
            raise ValueError(f'Not an image file ({", ".join(IMAGE_EXTENSIONS)}): {path}')
        else:
            images.append(path)
    names = Counter(_stem(path) for path in images)
    clashes = [path for path in images if names[_stem(path)] > 1]
    if clashes:
        raise ValueError(f'Images with the same name would overwrite each other\'s results: {", ".join(clashes)}')
    return images


def check_model_file(model_path: str) -> None:
    """Raise FileNotFoundError or ValueError unless ``model_path`` is a checkpoint or exported file that exists."""
    if not model_path.lower().endswith(CHECKPOINT_EXTENSIONS + EXPORTED_EXTENSIONS):
        raise ValueError(f'MODEL must be a checkpoint ({", ".join(CHECKPOINT_EXTENSIONS)}) or an exported file '
                         f'({", ".join(EXPORTED_EXTENSIONS)}), got {model_path}')
    if not osp.isfile(model_path):
        raise FileNotFoundError(f'Model file not found: {model_path}')


def init_model(config: Union[str, Config], weights: Optional[str] = None, device: Optional[str] = None,
               backend: Optional[str] = None) -> BaseModel:
    """The config's model with ``weights``, PyTorch or exported: the one way mmmnv2 builds a model to run.

    ``weights``: None for the initial weights; a checkpoint (``.pth``/``.pt``): the PyTorch model
    (``mmmnv2.utils.init_pytorch_model``: loaded weights-only and strictly), on ``device`` (default GPU if there is
    one, else CPU); or an exported file run in ``backend`` (``mmmnv2.deployment.init_exported_model``): ``.onnx`` in
    'onnxruntime' (the default) or 'openvino', ``.tflite`` in 'litert', ``.pte`` in 'executorch'. The model is in
    eval mode and has ``test_step``, ``cfg`` and
    ``dataset_meta`` (the file's, else the config's data set's).
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    config_host(cfg)  # refuses a config of another library before anything is loaded
    if weights is not None:
        check_model_file(weights)
        if weights.lower().endswith(EXPORTED_EXTENSIONS):
            return init_exported_model(cfg, weights, backend=backend)
    if backend is not None:
        raise ValueError(f'backend={backend!r} runs an exported file; weights must then be one of '
                         f'{", ".join(EXPORTED_EXTENSIONS)}, got {weights}')
    return init_pytorch_model(cfg, weights, device)


class ImageReadError(ValueError):
    """An input file cannot be read or decoded as an image."""


def check_image_size(path: str, max_pixels: int = MAX_PIXELS) -> None:
    """Raise ``ImageReadError`` if the header of image ``path`` declares more than ``max_pixels`` pixels.

    Only the header is read (PIL opens lazily); files PIL does not recognise are left to the decoder.
    """
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', Image.DecompressionBombWarning)  # the limit here is ours
        try:
            with Image.open(path) as image:
                width, height = image.size
        except Image.DecompressionBombError as error:  # above PIL's own limit, 2 * Image.MAX_IMAGE_PIXELS
            if max_pixels < 2 * (Image.MAX_IMAGE_PIXELS or 0):
                raise ImageReadError(f'{path}: {error}; it was not decoded') from None
            return
        except (UnidentifiedImageError, OSError, ValueError):
            return  # unreadable or not PIL's: the decoder reports it
    if width * height > max_pixels:
        raise ImageReadError(f'{path}: declares {width}x{height} pixels ({width * height / 1e6:.0f} MP), more than '
                             f'the limit of {max_pixels / 1e6:g} MP; it was not decoded (raise the limit to read it)')


def inference(model: BaseModel, images: Sequence[str], batch_size: int = 1,
              on_error: Optional[Callable[[str, Exception], None]] = None, max_pixels: int = MAX_PIXELS
              ) -> Iterator[Tuple[str, BaseDataElement]]:
    """Run ``model`` on image files through its config's test pipeline; yield (image, host data sample) in order.

    A generator: results come as each batch is done, and nothing runs until it is iterated (``list(...)`` for all
    at once, or hand it to ``save_results``, which writes each result as it comes).

    An image that cannot be read or decoded raises ``ImageReadError`` naming it; with ``on_error`` it is passed
    there as ``on_error(image, error)`` and skipped, and the other images are processed. Segmentation: the images
    of one batch must have the same size (MMSegmentation stacks them unpadded). An image whose header declares
    more than ``max_pixels`` pixels is refused the same way, before it is decoded.
    """
    with DefaultScope.overwrite_default_scope(config_host(model.cfg).scope):
        pipeline = Compose(image_file_transforms(model.cfg))
    load, rest = pipeline.transforms[0], Compose(pipeline.transforms[1:])  # the pipeline starts by reading the file
    batch: List[Tuple[str, dict]] = []
    for index, path in enumerate(images):
        try:
            check_image_size(path, max_pixels)
            loaded = load(dict(img_path=path, img_id=index))
            if loaded is None or loaded.get('img') is None:
                raise ValueError('no image decoded')
        except Exception as error:  # the host loaders raise assorted errors (AssertionError, cv2.error, OSError)
            refusal = error if isinstance(error, ImageReadError) else ImageReadError(
                f'{path}: cannot be read as an image ({str(error) or type(error).__name__})')
            if on_error is None:
                raise refusal from error
            on_error(path, refusal)
            continue
        batch.append((path, rest(loaded)))
        if len(batch) == batch_size or index == len(images) - 1:
            yield from _run_batch(model, batch)
            batch = []
    yield from _run_batch(model, batch)  # what is left when the last images could not be read


def _run_batch(model: BaseModel, batch: List[Tuple[str, dict]]) -> Iterator[Tuple[str, BaseDataElement]]:
    if batch:
        with torch.no_grad():
            yield from zip([path for path, _ in batch], model.test_step(pseudo_collate([d for _, d in batch])))


def output_files(cfg: Config, image_path: str, out_dir: str) -> List[str]:
    """The files ``save_results`` writes for ``image_path`` with a model of ``cfg``: picture, JSON (, label map)."""
    picture = osp.join(out_dir, 'vis', osp.basename(image_path))
    preds = osp.join(out_dir, 'preds', _stem(image_path))
    label_map = [preds + '.png'] if config_host(cfg).task == 'segmentation' else []
    return [picture, preds + '.json', *label_map]


def save_results(model: BaseModel, results: Iterable[Tuple[str, BaseDataElement]], out_dir: str,
                 score_thr: float = 0.3) -> List[Dict]:
    """Write the picture and the JSON (and label map) of each (image, data sample); return the JSON records.

    ``score_thr``: detections drawn in the pictures (the JSON has every detection). Each file is written through a
    temporary file (``mmmnv2.utils.replace_when_written``); a write that fails raises OSError naming the file.
    """
    return [save_result(model, image_path, sample, out_dir, score_thr) for image_path, sample in results]


def save_result(model: BaseModel, image_path: str, sample: BaseDataElement, out_dir: str,
                score_thr: float = 0.3) -> Dict:
    """``save_results`` for one image: write its files, return its JSON record."""
    classes = list(model.dataset_meta['classes'])
    image = mmcv.imread(image_path, channel_order='rgb')
    picture, record_file = output_files(model.cfg, image_path, out_dir)[:2]
    preds = osp.splitext(record_file)[0]
    record = dict(img_path=image_path, height=image.shape[0], width=image.shape[1])
    drawn = draw_sample(image, sample, classes, model.dataset_meta.get('palette'), score_thr=score_thr,
                        draw_gt=False)
    write_image(mmcv.rgb2bgr(drawn), picture)
    if 'pred_instances' in sample:  # detection
        record.update(_detection_record(sample, classes))
    else:
        record.update(_segmentation_record(sample, classes, preds + '.png'))
    with replace_when_written(preds + '.json') as temporary:
        mmengine.dump(record, temporary, file_format='json')
    return record


def _detection_record(sample: BaseDataElement, classes: List[str]) -> Dict:
    pred = sample.pred_instances
    labels = pred.labels.tolist()
    return dict(bboxes=pred.bboxes.tolist(), labels=labels, label_names=[classes[i] for i in labels],
                scores=pred.scores.tolist())


def _segmentation_record(sample: BaseDataElement, classes: List[str], label_map_file: str) -> Dict:
    label_map = sample.pred_sem_seg.data[0].cpu().numpy()
    write_image(label_map.astype(np.uint8 if len(classes) <= 256 else np.uint16), label_map_file)
    counts = np.bincount(label_map.ravel(), minlength=len(classes))
    return dict(sem_seg_path=label_map_file, pixel_counts={name: int(n) for name, n in zip(classes, counts)})


def _stem(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]
