"""Speed of an mmmnv2 config's model beside its closest MMDetection / MMSegmentation peer, on this machine.

Ours and the peer are measured in one process, figure by figure, from random weights (speed does not depend on the
weights, except the NMS of detection, whose cost grows with the boxes above ``score_thr``):

- network latency: ``model(inputs, mode='tensor')``, batch 1, at the config's input size;
- end-to-end latency, batch 1: a decoded uint8 image (numpy HWC) -> the config's test pipeline without its file
  loading (so JPEG decoding is excluded) -> ``model.test_step`` (data preprocessor, network, post-processing: box
  decoding + NMS, or resizing to the image + argmax);
- training throughput: ``model.train_step`` (forward, backward, optimizer step) on random images with synthetic
  targets, SyncBN reverted to BN;
- each latency as shipped (``torch.no_grad``) and optimised (``optimize_for_inference``, ``torch.inference_mode``),
  and in ONNX Runtime when asked (``mmmnv2.deployment``).

Figures are medians over the repeats after warm-up; every sample is kept in the results.
"""
import contextlib
import copy
import importlib
import logging
import os
import os.path as osp
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.hub import get_config
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData, PixelData
from torch.nn.modules.batchnorm import _BatchNorm

from ..apis import init_model
from ..deployment import export_onnx, init_exported_model
from ..utils import config_host, config_input_size, drop_pretrained, optimize_for_inference

# key -> (figure, unit), in table order
ROWS = {
    'network': ('network latency, PyTorch eager', 'ms'),
    'network_optimized': ('network latency, PyTorch eager, optimised', 'ms'),
    'end_to_end': ('end-to-end latency, PyTorch eager', 'ms'),
    'end_to_end_optimized': ('end-to-end latency, PyTorch eager, optimised', 'ms'),
    'network_onnxruntime': ('network latency, ONNX Runtime', 'ms'),
    'end_to_end_onnxruntime': ('end-to-end latency, ONNX Runtime', 'ms'),
    'train': ('training throughput', 'images/s'),
}


@dataclass
class BenchmarkSettings:
    """What to measure and how often; ``None`` means the task's default."""
    threads: int = 2
    warmup: int = 5
    repeats: int = 20
    train_warmup: int = 2
    train_iters: int = 10  # 0: no training figure
    batch_size: Optional[int] = None  # training batch (detection 8, segmentation 4)
    image_size: Optional[Tuple[int, int]] = None  # end-to-end image (detection 480x640, segmentation: input size)
    score_thr: Optional[float] = 0.0  # detection: both models' score_thr; None keeps each config's own
    optimize: bool = True
    fuse_conv_bn: bool = True
    channels_last: bool = True
    onnx_dir: Optional[str] = None  # export both models there and add the ONNX Runtime rows


def load_config(path: str) -> Config:
    """A config file, or a host's own config named ``mmdet::...`` / ``mmseg::...``."""
    return get_config(path) if '::' in path else Config.fromfile(path)


@contextlib.contextmanager
def quiet_logger() -> Iterator[None]:
    """Hide MMEngine's per-parameter ``init_weights`` report."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def add_missing_loss_cls(model: torch.nn.Module) -> None:
    """Let MMDetection 3.3.0's ``SSDHead`` predict (the peer): it reads ``self.loss_cls``, which it never defines.

    Gives it the softmax cross-entropy it trains with, as ``mmmnv2.SSDLiteHead`` does; prediction only reads
    whether that loss has custom activations. Models without an ``SSDHead`` are left as they are.
    """
    from mmdet.models.dense_heads import SSDHead
    from mmdet.models.losses import CrossEntropyLoss
    for module in model.modules():
        if isinstance(module, SSDHead) and not hasattr(module, 'loss_cls'):
            module.loss_cls = CrossEntropyLoss(use_sigmoid=False)


def build_model(cfg: Config) -> BaseModel:
    """The config's model with random weights (``init_weights``), SyncBN reverted to BN, in eval mode."""
    with quiet_logger():
        model = init_model(cfg, device='cpu')
    add_missing_loss_cls(model)
    return model.eval()


def test_pipeline(cfg: Config) -> Compose:
    """The config's test pipeline after loading: no file reading or decoding, no annotations."""
    pipeline = cfg.test_dataloader.dataset.get('pipeline', None) or cfg.test_pipeline
    init_default_scope(config_host(cfg).scope)
    return Compose([t for t in pipeline if t['type'].split('.')[-1] not in ('LoadImageFromFile', 'LoadAnnotations')])


def synthetic_batch(cfg: Config, batch_size: int, input_size: Tuple[int, int]) -> dict:
    """Random uint8 images with targets: three random boxes per image (detection) or random label maps."""
    height, width = input_size
    inputs = [torch.randint(0, 256, (3, height, width), dtype=torch.uint8) for _ in range(batch_size)]
    meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width),
                scale_factor=(1.0, 1.0))
    host = config_host(cfg)
    module, name = host.data_sample.rsplit('.', 1)
    data_sample = getattr(importlib.import_module(module), name)
    num_classes = cfg.model[host.head].num_classes
    samples = []
    for _ in range(batch_size):
        sample = data_sample(metainfo=meta)
        if host.task == 'detection':
            size = torch.tensor([width, height], dtype=torch.float32)
            corner = torch.rand(3, 2) * 0.6 * size
            extent = (torch.rand(3, 2) * 0.3 + 0.1) * size
            sample.gt_instances = InstanceData(bboxes=torch.cat([corner, corner + extent], dim=1),
                                               labels=torch.randint(0, num_classes, (3,)))
        else:
            sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, height, width)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def time_calls(fn: Callable[[], object], warmup: int, repeats: int, max_seconds: Optional[float] = None,
               min_repeats: int = 1) -> List[float]:
    """Milliseconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls; with ``max_seconds``, no
    further warm-up calls once they took that long (one at least) and no further timed calls once the timed ones took
    that long and at least ``min_repeats`` were made."""
    return time_alternately((fn,), warmup, repeats, max_seconds, min_repeats)[0]


def time_alternately(fns: Sequence[Callable[[], object]], warmup: int, repeats: int,
                     max_seconds: Optional[float] = None, min_repeats: int = 1) -> List[List[float]]:
    """``time_calls`` of each of ``fns``, their calls interleaved: one call of each per round, in reverse order every
    other round, so a change in the machine's load (other processes) reaches them alike and their ratio holds.
    ``max_seconds`` is per function."""
    budget = None if max_seconds is None else max_seconds * len(fns)
    start = time.perf_counter()
    for _ in range(warmup):
        for fn in fns:
            fn()
        if budget is not None and time.perf_counter() - start >= budget:
            break
    times: List[List[float]] = [[] for _ in fns]
    while len(times[0]) < repeats:
        order = range(len(fns)) if len(times[0]) % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            start = time.perf_counter()
            fns[i]()
            times[i].append((time.perf_counter() - start) * 1e3)
        if budget is not None and len(times[0]) >= min_repeats and sum(map(sum, times)) >= budget * 1e3:
            break
    return times


class Subject:
    """One side of the comparison: a config, its model with random weights, and what feeds the model."""

    def __init__(self, name: str, config: str, cfg: Config, settings: BenchmarkSettings) -> None:
        self.name = name
        self.config = config
        self.cfg = cfg
        self.host = config_host(cfg)
        drop_pretrained(self.cfg.model)
        post_processing = None
        if self.host.task == 'detection':  # single-stage detectors: score_thr, nms and max_per_img sit in test_cfg
            test_cfg = self.cfg.model.get('test_cfg') or {}
            if settings.score_thr is not None and 'score_thr' in test_cfg:
                test_cfg['score_thr'] = settings.score_thr
            post_processing = dict(score_thr=test_cfg.get('score_thr'), nms_pre=test_cfg.get('nms_pre'),
                                   nms_iou=test_cfg.get('nms', {}).get('iou_threshold'),
                                   max_per_img=test_cfg.get('max_per_img'))
        self.input_size = config_input_size(self.cfg)
        self.image_size = tuple(settings.image_size or self.host.benchmark_image_size or self.input_size)
        self.model = build_model(self.cfg)
        self.pipeline = test_pipeline(self.cfg)
        self.image = np.random.RandomState(0).randint(0, 256, (*self.image_size, 3), dtype=np.uint8)
        self.info: Dict = dict(config=config, task=self.host.task, input_size=list(self.input_size),
                               image_size=list(self.image_size), post_processing=post_processing,
                               after_network=self.host.post_processing)

    def network_latency(self, model: torch.nn.Module, settings: BenchmarkSettings, optimized: bool) -> List[float]:
        inputs = torch.randn(1, 3, *self.input_size)
        with torch.inference_mode() if optimized else torch.no_grad():
            return time_calls(lambda: model(inputs, mode='tensor'), settings.warmup, settings.repeats)

    def end_to_end_call(self, model: BaseModel) -> Callable[[], list]:
        """One end-to-end inference of the decoded image: test pipeline, ``model.test_step`` (data preprocessor,
        network, post-processing); returns the data samples."""
        def infer() -> list:
            height, width = self.image.shape[:2]
            packed = self.pipeline(dict(img=self.image, img_id=0, img_path=None, img_shape=(height, width),
                                        ori_shape=(height, width)))
            return model.test_step(dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]))

        return infer

    def end_to_end_latency(self, model: BaseModel, settings: BenchmarkSettings, optimized: bool,
                           key: str) -> List[float]:
        infer = self.end_to_end_call(model)
        with torch.inference_mode() if optimized else torch.no_grad():
            times = time_calls(infer, settings.warmup, settings.repeats)
            result = infer()[0]
        if 'pred_instances' in result:
            self.info.setdefault('detections', {})[key] = len(result.pred_instances)
        return times

    def training_iteration_times(self, batch_size: int, settings: BenchmarkSettings) -> List[float]:
        model = build_model(self.cfg).train()
        with quiet_logger():
            optim_wrapper = build_optim_wrapper(model, self.cfg.optim_wrapper)
        data = synthetic_batch(self.cfg, batch_size, self.input_size)
        return time_calls(lambda: model.train_step(data, optim_wrapper), settings.train_warmup, settings.train_iters)

    def optimized_model(self, settings: BenchmarkSettings) -> BaseModel:
        model = optimize_for_inference(copy.deepcopy(self.model), fuse_conv_bn=settings.fuse_conv_bn,
                                       channels_last=settings.channels_last)
        self.info['batch_norms_left_after_optimisation'] = sum(isinstance(m, _BatchNorm) for m in model.modules())
        return model

    def onnx_model(self, settings: BenchmarkSettings) -> BaseModel:
        """Export this model (random weights) to ``<onnx_dir>/<name>.onnx`` and load it in ONNX Runtime."""
        os.makedirs(settings.onnx_dir, exist_ok=True)
        onnx_file = osp.join(settings.onnx_dir, f'{self.name}_{osp.splitext(osp.basename(self.config))[0]}.onnx')
        with quiet_logger():
            export_onnx(self.cfg, None, onnx_file)
            model = init_exported_model(self.cfg, onnx_file, num_threads=settings.threads)
        add_missing_loss_cls(model)  # the runner predicts with the host's head
        self.info['onnx_file'] = onnx_file
        return model


def busy_cpus(seconds: float = 1.0) -> Optional[float]:
    """How many CPUs other processes keep busy, from /proc/stat over ``seconds`` (None where there is none)."""
    def cpu_times() -> List[int]:
        with open('/proc/stat') as f:
            return [int(value) for value in f.readline().split()[1:]]

    if not osp.exists('/proc/stat'):
        return None
    before = cpu_times()
    time.sleep(seconds)
    delta = [b - a for a, b in zip(before, cpu_times())]
    idle = delta[3] + delta[4]  # idle, iowait
    return round((1 - idle / max(sum(delta), 1)) * (os.cpu_count() or 1), 2)


def machine_info(threads: int) -> Dict:
    """CPU model, core count, threads used, CPUs busy before the run (other processes), library versions."""
    import mmcv
    import mmdet
    import mmengine
    import mmseg
    cpu = platform.processor() or platform.machine()
    if osp.exists('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            names = [line.split(':', 1)[1].strip() for line in f if line.startswith('model name')]
        cpu = names[0] if names else cpu
    return dict(cpu=cpu, logical_cpus=os.cpu_count(), threads=threads, busy_cpus_before_run=busy_cpus(),
                python=platform.python_version(),
                torch=torch.__version__, mmengine=mmengine.__version__, mmcv=mmcv.__version__,
                mmdet=mmdet.__version__, mmseg=mmseg.__version__)


def run_benchmark(config: str, peer: Optional[str] = None, settings: Optional[BenchmarkSettings] = None) -> Dict:
    """Measure ``config``'s model and ``peer``'s (default: the host's closest model); returns every figure.

    Raises:
        ValueError: if a config is neither MMDetection nor MMSegmentation, or the peer is of the other task.
    """
    settings = settings or BenchmarkSettings()
    machine = machine_info(settings.threads)  # before our own load
    torch.set_num_threads(settings.threads)
    torch.manual_seed(0)
    ours_cfg = load_config(config)
    host = config_host(ours_cfg)
    peer = peer or host.benchmark_peer
    peer_cfg = load_config(peer)
    peer_host = config_host(peer_cfg)
    if peer_host != host:
        raise ValueError(f'{config} is a {host.task} config ({host.scope}) but the peer {peer} is a '
                         f'{peer_host.task} config ({peer_host.scope}); compare models of the same task')
    batch_size = settings.batch_size or host.benchmark_batch_size
    if host.task == 'segmentation' and batch_size < 2 and settings.train_iters > 0:
        raise ValueError('segmentation training needs a batch of 2 or more: the image-pooling branch\'s batch norm '
                         'sees one value per channel')
    ours = Subject('ours', config, ours_cfg, settings)
    theirs = Subject('peer', peer, peer_cfg, settings)
    subjects = (ours, theirs)
    samples: Dict[str, Dict[str, List[float]]] = {}

    def measure(key: str, run: Callable[[Subject], List[float]]) -> None:
        samples[key] = {subject.name: run(subject) for subject in subjects}  # ours, then the peer

    measure('network', lambda s: s.network_latency(s.model, settings, optimized=False))
    measure('end_to_end', lambda s: s.end_to_end_latency(s.model, settings, False, 'end_to_end'))
    if settings.optimize:
        optimized = {s.name: s.optimized_model(settings) for s in subjects}
        measure('network_optimized', lambda s: s.network_latency(optimized[s.name], settings, optimized=True))
        measure('end_to_end_optimized',
                lambda s: s.end_to_end_latency(optimized[s.name], settings, True, 'end_to_end_optimized'))
        del optimized
    if settings.onnx_dir:
        onnx_models = {s.name: s.onnx_model(settings) for s in subjects}

        def onnx_network(subject: Subject) -> List[float]:
            inputs = np.random.RandomState(0).randn(1, 3, *subject.input_size).astype(np.float32)
            return time_calls(lambda: onnx_models[subject.name].forward_network(inputs), settings.warmup,
                              settings.repeats)

        measure('network_onnxruntime', onnx_network)
        measure('end_to_end_onnxruntime',
                lambda s: s.end_to_end_latency(onnx_models[s.name], settings, False, 'end_to_end_onnxruntime'))
    if settings.train_iters > 0:
        measure('train', lambda s: [batch_size * 1e3 / ms for ms in s.training_iteration_times(batch_size, settings)])

    rows = []
    for key, (figure, unit) in ROWS.items():
        if key not in samples:
            continue
        row = dict(key=key, figure=figure, unit=unit)
        for name, values in samples[key].items():
            row[name] = statistics.median(values)
            row[f'{name}_samples'] = values
        row['ratio'] = row['ours'] / row['peer']
        rows.append(row)
    medians = {row['key']: row for row in rows}
    # The spec's question for deployment as users run it: our optimised model against the peer as it ships.
    optimized_vs_shipped = {key: medians[f'{key}_optimized']['ours'] / medians[key]['peer']
                            for key in ('network', 'end_to_end') if f'{key}_optimized' in medians}
    return dict(machine=machine,
                settings=dict(asdict(settings), batch_size=batch_size),
                ours=ours.info, peer=theirs.info, rows=rows, ours_optimized_vs_peer_shipped=optimized_vs_shipped)
