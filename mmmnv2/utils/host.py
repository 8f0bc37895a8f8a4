"""The two OpenMMLab hosts mmmnv2 serves, one record each: everything that differs between them, stated once.

A config names its host by ``default_scope`` ('mmdet' or 'mmseg'); ``config_host`` looks the record up, and the
tools, the exporter, the runners of exported files and the benchmark read what they need from it instead of
branching on the scope's name.
"""
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DATASETS, MODELS, DefaultScope
from torch import nn


def _mmdet_show_dir(cfg: Config, show_dir: str) -> None:
    cfg.default_hooks.visualization.test_out_dir = show_dir  # as MMDetection's tools/test.py: under the run folder


def _mmseg_show_dir(cfg: Config, show_dir: str) -> None:
    cfg.default_hooks.visualization.interval = 1  # as MMSegmentation's tools/test.py: every image,
    cfg.visualizer.save_dir = show_dir  # saved by the visualizer


def _mmdet_out(cfg: Config, out: str) -> None:
    """As MMDetection's tools/test.py: every prediction into one pickle, by ``DumpDetResults``."""
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl or .pickle file for detection, got {out!r}')
    metrics = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
    cfg.test_evaluator = [*metrics, dict(type='DumpDetResults', out_file_path=out)]


def _mmseg_out(cfg: Config, out: str) -> None:
    """As MMSegmentation's tools/test.py: the label maps as PNG files in the folder ``out``."""
    cfg.test_evaluator['output_dir'] = out
    cfg.test_evaluator['keep_results'] = True


@dataclass(frozen=True)
class Host:
    """What mmmnv2 needs to know about one host library."""
    scope: str  # the config's default_scope and the host's registry scope
    task: str  # 'detection' or 'segmentation'
    head: str  # the model config's key of the head that predicts the classes
    data_sample: str  # the host's data sample class, 'module.Class'
    metric: str  # key of the main metric the host's evaluator logs for our configs
    metric_name: str  # that metric, as a reader knows it
    metric_to_percent: float  # factor from the logged value to percent (COCO logs fractions, MMSeg percent)
    post_processing: str  # what runs after the network at test time
    exported_runner: str  # registered type of the runner of exported files that returns the host's data samples
    benchmark_peer: str  # the closest model the host ships (neither is the paper's model)
    benchmark_batch_size: int  # training batch of the benchmark
    benchmark_image_size: Optional[Tuple[int, int]]  # decoded image of the end-to-end figures; None: input size
    apply_show_dir: Callable[[Config, str], None]  # tools/test.py --show-dir, as the host's own tool
    apply_out: Callable[[Config, str], None]  # tools/test.py --out, as the host's own tool


HOSTS: Dict[str, Host] = {
    'mmdet': Host(
        scope='mmdet', task='detection', head='bbox_head', data_sample='mmdet.structures.DetDataSample',
        metric='coco/bbox_mAP_50', metric_name='bbox mAP@0.5', metric_to_percent=100.0,
        post_processing='box decoding + NMS', exported_runner='mmmnv2.ExportedDetector',
        benchmark_peer='mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py', benchmark_batch_size=8,
        benchmark_image_size=(480, 640),  # (height, width) of a typical COCO image; the test pipeline resizes it
        apply_show_dir=_mmdet_show_dir, apply_out=_mmdet_out),
    'mmseg': Host(
        scope='mmseg', task='segmentation', head='decode_head', data_sample='mmseg.structures.SegDataSample',
        metric='mIoU', metric_name='mIoU', metric_to_percent=1.0,
        post_processing='resize to the image + argmax', exported_runner='mmmnv2.ExportedSegmentor',
        benchmark_peer='mmseg::mobilenet_v2/mobilenet-v2-d8_deeplabv3_4xb4-160k_ade20k-512x512.py',
        benchmark_batch_size=4, benchmark_image_size=None,
        apply_show_dir=_mmseg_show_dir, apply_out=_mmseg_out),
}


def config_host(cfg: Config) -> Host:
    """The record of the config's host (its ``default_scope``); ValueError for a scope mmmnv2 does not serve."""
    scope = cfg.get('default_scope', None)
    if scope not in HOSTS:
        raise ValueError(f'default_scope of the config must be one of {tuple(HOSTS)} (the host library), '
                         f'got {scope!r}')
    return HOSTS[scope]


def build_host_model(cfg: Config) -> nn.Module:
    """The config's model, built by its host library, in eval mode and with SyncBN reverted to BN (for one device).

    Weights are left as constructed: nothing is downloaded (a ``Pretrained`` init_cfg is read only by
    ``init_weights``); load a checkpoint into the model, or count its parameters and multiply-adds.
    """
    with DefaultScope.overwrite_default_scope(config_host(cfg).scope):
        model = MODELS.build(cfg.model)
    return revert_sync_batchnorm(model).eval()


def config_dataset_meta(cfg: Config) -> Dict:
    """Class names and palette of the config's test data set: its ``metainfo``, else its dataset class's."""
    dataset = cfg.test_dataloader.dataset
    meta = dataset.get('metainfo', None) or cfg.get('metainfo', None)
    if meta:
        return dict(meta)
    with DATASETS.switch_scope_and_registry(config_host(cfg).scope) as registry:
        return dict(getattr(registry.get(dataset.type), 'METAINFO', {}))


def model_dataset_meta(cfg: Config, file: str, file_meta: Optional[Dict]) -> Dict:
    """The class names a model file brings (``file_meta``, its ``dataset_meta``), else the config's.

    Where the file's names differ from the config's, a warning prints both lists (the file's are used: they are the
    ones its weights were trained with); a file whose number of classes differs from the config's is refused
    (ValueError naming the file): its outputs would be read with the wrong names.
    """
    config_meta = config_dataset_meta(cfg)
    if not file_meta or not file_meta.get('classes'):
        return config_meta
    found, expected = list(file_meta.get('classes', ())), list(config_meta.get('classes', ()))
    if expected and len(found) != len(expected):
        raise ValueError(f'{file}: holds {len(found)} class names {found}, but the config has {len(expected)} '
                         f'classes {expected}')
    if expected and found != expected:
        warnings.warn(f'{file}: its class names differ from the config\'s; the file\'s are used.\n  file:   {found}\n'
                      f'  config: {expected}', stacklevel=2)
    return dict(file_meta)
