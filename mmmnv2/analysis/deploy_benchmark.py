"""The deployment benchmark: every runtime on every model in one run, the machine's floor, LiteRT on Google's file.

One process, one machine, batch 1, the same threads for every runtime:

- models: our SSDLite and Mobile DeepLabv3, the hosts' peers (MMDetection's SSDLite, MMSegmentation's DeepLabV3),
  and Google's float Mobile DeepLabv3 (depth multiplier 0.5, output stride 8, 257x257) converted into our model from
  its TFLite file. All but Google's model have random weights (speed does not depend on them, except through the
  boxes reaching NMS: detection runs at ``score_thr`` 0, the worst case);
- runtimes: PyTorch eager (as shipped, ``torch.no_grad``), ONNX Runtime and OpenVINO, each in fp32 and int8 (static
  quantization of the exported graph, calibrated on real photos where they are present, random images otherwise);
- figures: network latency (the graph alone on a float input) and end-to-end latency (a decoded uint8 image ->
  test pipeline -> data preprocessor -> network -> post-processing, as ``mmmnv2.analysis.benchmark`` measures);
- LiteRT (``ai-edge-litert``) running Google's own ``.tflite`` file against the same model converted into ours, on the
  same 257x257 input, and the pixel agreement of our int8 label maps with LiteRT's float output on real photos;
- the machine's floor: a network's FLOPs (2 x the multiply-adds of ``count_macs``) over the best of two compute peaks
  measured in the same run: an fp32 GEMM in PyTorch and a dense 3x3 convolution in ONNX Runtime, both on the
  benchmark's threads.

Every figure is a median after warm-up, with a repeat count capped by a time budget per figure; every sample is kept.
"""
import json
import os
import os.path as osp
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.model import BaseModel

from ..utils import HOSTS
from .benchmark import (
    BenchmarkSettings,
    Subject,
    busy_cpus,
    format_figure,
    load_config,
    machine_info,
    quiet_logger,
    time_calls,
)
from .complexity import forward_macs

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / 'shared' / 'data'  # reference data beside the checkout, where present
GOOGLE_FILE = 'tflite/deeplabv3_257_mv_gpu.tflite'
CORAL_PHOTOS = ('bird_segmentation.bmp', 'bird.bmp', 'cat.bmp', 'grace_hopper.bmp')
COCO_PHOTOS = 'coco_mini_val2017/val2017'

# key -> (name, config); Google's model gets its weights from GOOGLE_FILE
MODELS = {
    'ssdlite': ('SSDLite 320 (ours)', 'configs/ssdlite/ssdlite_mobilenetv2_8xb24-600e_coco-320x320.py'),
    'ssdlite_peer': ('MMDetection SSDLite 320', HOSTS['mmdet'].benchmark_peer),
    'deeplab': ('Mobile DeepLabv3 512 (ours)',
                'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-os16_4xb4-30k_voc12aug-512x512.py'),
    'deeplab_peer': ('MMSegmentation DeepLabV3 512', HOSTS['mmseg'].benchmark_peer),
    'google_dm05': ('Google DM0.5 Mobile DeepLabv3 257, converted',
                    'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-dm0.5-os8_tf-weights_voc12-257x257.py'),
}
PEERS = ('ssdlite_peer', 'deeplab_peer')
# key -> (column, precision, backend of init_onnx_model; None: the PyTorch model)
RUNTIMES = {
    'pytorch': ('PyTorch eager', 'fp32', None),
    'onnxruntime': ('ONNX Runtime', 'fp32', 'onnxruntime'),
    'openvino': ('OpenVINO', 'fp32', 'openvino'),
    'onnxruntime_int8': ('ONNX Runtime int8', 'int8', 'onnxruntime'),
    'openvino_int8': ('OpenVINO int8', 'int8', 'openvino'),
}
FIGURES = {'network': 'network', 'end_to_end': 'end-to-end'}


@dataclass
class DeploySettings:
    """What the deployment suite measures and how often."""
    out_dir: str = 'work_dirs/deploy_benchmark'
    threads: int = 2
    warmup: int = 2
    repeats: int = 10
    max_seconds: float = 1.5  # per figure: no further repeats once this much time is spent (at least min_repeats)
    min_repeats: int = 3
    models: Sequence[str] = tuple(MODELS)
    runtimes: Sequence[str] = tuple(RUNTIMES)
    data_root: Optional[str] = str(SHARED_DATA)  # Google's file and the real photos; None or missing: no LiteRT
    calibration_photos: int = 32  # the first COCO photos (sorted); the others and the Coral photos are for agreement
    speed_calibration_photos: int = 4  # of those, for the models with random weights (their int8 is timed only)
    agreement_photos: Optional[int] = None  # None: every photo not used for calibration
    gemm_size: int = 1536


# ---------------------------------------------------------------------------------------------------------------
# The machine's floor


def gemm_peak_gflops(threads: int, size: int = 1536, repeats: int = 5) -> float:
    """Best fp32 GEMM rate of PyTorch on ``threads`` threads: 2 * size^3 FLOPs over the fastest of ``repeats``."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(0)
        a, b = (torch.randn(size, size, generator=generator) for _ in range(2))
        torch.mm(a, b)
        best = min(time_calls(lambda: torch.mm(a, b), 1, repeats, 10.0, repeats))
    finally:
        torch.set_num_threads(previous)
    return 2 * size ** 3 / (best * 1e-3) / 1e9


def conv_peak_gflops(threads: int, channels: int = 256, size: int = 56, repeats: int = 10) -> float:
    """Best rate of a dense 3x3 convolution (``channels`` -> ``channels`` at ``size`` x ``size``, batch 1) in ONNX
    Runtime on ``threads`` threads: 2 * size^2 * channels^2 * 9 FLOPs over the fastest of ``repeats`` runs."""
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper
    weight = np.random.RandomState(0).randn(channels, channels, 3, 3).astype(np.float32) * 0.05
    graph = helper.make_graph(
        [helper.make_node('Conv', ['x', 'w'], ['y'], pads=[1, 1, 1, 1])], 'conv',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, channels, size, size])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, channels, size, size])],
        [numpy_helper.from_array(weight, 'w')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=['CPUExecutionProvider'])
    inputs = {'x': np.random.RandomState(1).randn(1, channels, size, size).astype(np.float32)}
    best = min(time_calls(lambda: session.run(None, inputs), 2, repeats, 10.0, repeats))
    return 2 * size * size * channels * channels * 9 / (best * 1e-3) / 1e9


def measure_peak(threads: int, gemm_size: int, earlier: Optional[Dict] = None) -> Dict:
    """Both compute peaks (GFLOP/s), each the best of this and an ``earlier`` measurement of the run, and the one
    the floor uses: the higher."""
    peaks = dict(gemm_gflops=gemm_peak_gflops(threads, gemm_size), conv_gflops=conv_peak_gflops(threads))
    if earlier:
        peaks = {key: max(value, earlier[key]) for key, value in peaks.items()}
    source = max(peaks, key=peaks.get)
    return dict(peaks, peak_gflops=peaks[source],
                peak_source=dict(gemm_gflops=f'PyTorch fp32 GEMM {gemm_size}x{gemm_size}x{gemm_size}',
                                 conv_gflops='ONNX Runtime fp32 3x3 conv 256->256 at 56x56')[source])


def floor_ms(flops: float, peak_gflops: float) -> float:
    """Milliseconds ``flops`` take at ``peak_gflops``: the network's time if every operation ran at the peak."""
    return flops / (peak_gflops * 1e9) * 1e3


# ---------------------------------------------------------------------------------------------------------------
# Photos, LiteRT


def real_photos(data_root: Optional[str]) -> Tuple[List[str], List[str]]:
    """(Coral photos, COCO photos sorted by name) under ``data_root``; empty lists where absent."""
    if not data_root or not osp.isdir(data_root):
        return [], []
    coral = [osp.join(data_root, 'images', name) for name in CORAL_PHOTOS
             if osp.isfile(osp.join(data_root, 'images', name))]
    coco_dir = osp.join(data_root, COCO_PHOTOS)
    coco = sorted(osp.join(coco_dir, name) for name in os.listdir(coco_dir)) if osp.isdir(coco_dir) else []
    return coral, coco


def square_rgb(path: str, size: int) -> np.ndarray:
    """The photo resized to size x size (bilinear), RGB uint8: the input LiteRT and our model both read."""
    import mmcv
    return mmcv.imresize(mmcv.imread(path, channel_order='rgb'), (size, size), interpolation='bilinear')


def import_litert():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as error:
        raise ImportError('the LiteRT comparison needs ai-edge-litert: pip install "mmmnv2[benchmark]"') from error
    return Interpreter


class LiteRTModel:
    """A float ``.tflite`` segmentation file in LiteRT: RGB uint8 -> [-1, 1] float input -> logits (H, W, classes).

    The scaling to [-1, 1] is TF DeepLab's preprocessing (``deeplab/core/preprocess_utils.py``), which Google's
    Mobile DeepLabv3 files expect.
    """

    def __init__(self, tflite_file: str, threads: int) -> None:
        interpreter = import_litert()
        self.interpreter = interpreter(model_path=tflite_file, num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.input_size = tuple(int(s) for s in self.input['shape'][1:3])

    def invoke(self, inputs: np.ndarray) -> np.ndarray:
        """The logits for one float input (1, H, W, 3) already scaled to [-1, 1]."""
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


# ---------------------------------------------------------------------------------------------------------------
# Models in each runtime


def preprocessed_inputs(runner: BaseModel, subject: Subject, photos: Sequence[str], count: int) -> List[np.ndarray]:
    """``count`` network inputs (1, 3, H, W) float32 from the photos, resized to the end-to-end image's size, through
    the subject's test pipeline and the runner's data preprocessor (which pads to the graph's size); random uint8
    images where there are no photos."""
    import mmcv
    # BGR, as LoadImageFromFile reads, at the size of the end-to-end image (the padded graph input takes no more)
    height, width = subject.image_size
    images = [mmcv.imresize(mmcv.imread(path), (width, height), interpolation='bilinear') for path in photos[:count]]
    random = np.random.RandomState(0)
    while len(images) < count:
        images.append(random.randint(0, 256, (*subject.image_size, 3), dtype=np.uint8))
    arrays = []
    for image in images:
        height, width = image.shape[:2]
        packed = subject.pipeline(dict(img=image, img_id=0, img_path=None, img_shape=(height, width),
                                       ori_shape=(height, width)))
        data = runner.data_preprocessor(dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]))
        arrays.append(data['inputs'].numpy().astype(np.float32))
    return arrays


class Unavailable(RuntimeError):
    """A runtime this installation cannot provide (the reason is recorded in the results instead of a figure)."""


def quantized_file(subject: Subject, onnx_file: str, backend: str, calibration: List[np.ndarray],
                   out_dir: str) -> str:
    """The int8 ONNX file of ``onnx_file`` for ``backend``, calibrated on ``calibration``: the quantizers of
    ``mmmnv2.deployment.quantization`` (onnxruntime's static QDQ for onnxruntime, NNCF for OpenVINO) without its
    accuracy guard, which needs the config's data set (Google's model is checked against LiteRT here instead)."""
    try:
        from ..deployment.quantization import QUANTIZERS
    except ImportError as error:
        raise Unavailable(f'int8 quantization is not available: {error}') from error
    out_file = osp.join(out_dir, f'{subject.name}_int8_{backend}.onnx')
    with quiet_logger():
        return QUANTIZERS[backend](onnx_file, out_file, calibration)


def postprocessed_file(subject: Subject, network_file: str) -> str:
    """``network_file`` (fp32 or int8) with the config's post-processing appended as ONNX operators
    (``mmmnv2.deployment.add_postprocess``), written beside it as ``*_postprocess.onnx``."""
    from ..deployment import add_postprocess
    with quiet_logger():
        return add_postprocess(subject.cfg, network_file, osp.splitext(network_file)[0] + '_postprocess.onnx')


def runtime_model(subject: Subject, model_file: str, backend: str, threads: int) -> BaseModel:
    """The runner for ``model_file`` on ``backend``."""
    from ..deployment import init_onnx_model
    from .benchmark import add_missing_loss_cls
    with quiet_logger():
        try:
            model = init_onnx_model(subject.cfg, model_file, num_threads=threads, backend=backend)
        except ImportError as error:  # the runtime is not installed: its column records why
            raise Unavailable(str(error)) from error
    add_missing_loss_cls(model)  # the runner predicts with the host's head
    return model


def network_fn(model: BaseModel, subject: Subject) -> Callable[[], object]:
    """One network pass on a random float input of the model's size."""
    if hasattr(model, 'forward_network'):  # a runner: the graph alone, as the PyTorch model's mode='tensor'
        inputs = np.random.RandomState(0).randn(1, 3, *subject.input_size).astype(np.float32)
        return lambda: model.forward_network(inputs)
    tensor = torch.from_numpy(np.random.RandomState(0).randn(1, 3, *subject.input_size).astype(np.float32))
    return no_grad(lambda: model(tensor, mode='tensor'))


def no_grad(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` run under ``torch.no_grad`` (PyTorch as shipped; the runners' post-processing runs in PyTorch too)."""
    def run() -> object:
        with torch.no_grad():
            return fn()

    return run


# ---------------------------------------------------------------------------------------------------------------
# The run


def convert_google_model(cfg, tflite_file: str, out_dir: str) -> str:
    """Google's TFLite file converted into the config's model; returns the checkpoint path."""
    from ..converters import convert_tf_file
    state_dict, meta = convert_tf_file(tflite_file, cfg, None)
    checkpoint = osp.join(out_dir, 'google_dm05.pth')
    torch.save(dict(state_dict=state_dict, meta=meta), checkpoint)
    return checkpoint


def median(values: List[float]) -> float:
    return statistics.median(values)


def run_deploy_benchmark(settings: Optional[DeploySettings] = None, log: Callable[[str], None] = print) -> Dict:
    """Measure every model in every runtime; returns every figure, the floor, LiteRT and the targets."""
    settings = settings or DeploySettings()
    unknown = sorted(set(settings.models) - set(MODELS)) + sorted(set(settings.runtimes) - set(RUNTIMES))
    if unknown:
        raise ValueError(f'unknown models or runtimes {unknown}; models: {list(MODELS)}, runtimes: {list(RUNTIMES)}')
    os.makedirs(settings.out_dir, exist_ok=True)
    machine = machine_info(settings.threads)  # before our own load
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _run(settings, machine, log)
    finally:
        torch.set_num_threads(threads)


def _run(settings: DeploySettings, machine: Dict, log: Callable[[str], None]) -> Dict:
    start = time.time()
    base = BenchmarkSettings(threads=settings.threads, warmup=settings.warmup, repeats=settings.repeats,
                             train_iters=0, score_thr=0.0, onnx_dir=settings.out_dir)
    timed = dict(warmup=settings.warmup, repeats=settings.repeats, max_seconds=settings.max_seconds,
                 min_repeats=settings.min_repeats)
    peak = measure_peak(settings.threads, settings.gemm_size)
    coral, coco = real_photos(settings.data_root)
    calibration_photos = coco[:settings.calibration_photos]
    agreement_photos = coral + coco[settings.calibration_photos:]
    if settings.agreement_photos is not None:
        agreement_photos = agreement_photos[:settings.agreement_photos]
    google_file = osp.join(settings.data_root, GOOGLE_FILE) if settings.data_root else None
    has_google = bool(google_file and osp.isfile(google_file))
    results: Dict = dict(machine=machine, settings=asdict(settings), peak=peak, models={}, litert=None,
                         photos=dict(calibration=[osp.basename(p) for p in calibration_photos],
                                     agreement=[osp.basename(p) for p in agreement_photos],
                                     calibration_source='real photos' if calibration_photos else 'random images'))
    for key in settings.models:
        name, config = MODELS[key]
        if key == 'google_dm05' and not has_google:
            results['models'][key] = dict(name=name, config=config,
                                          skipped=f'{google_file or "no data root"} is not present')
            continue
        log(f'{name}: {config}')
        cfg = load_config(str(REPO / config) if not config.startswith(('mmdet::', 'mmseg::')) else config)
        subject = Subject(key, config, cfg, base)
        checkpoint = None
        if key == 'google_dm05':
            checkpoint = convert_google_model(subject.cfg, google_file, settings.out_dir)
            subject.model.load_state_dict(torch.load(checkpoint, weights_only=True)['state_dict'])
        macs = forward_macs(subject.model, *subject.input_size)
        entry = dict(name=name, **subject.info, macs=macs, flops=2 * macs, figures={}, unavailable={})
        results['models'][key] = entry
        models: Dict[str, BaseModel] = {}
        onnx_file = None
        calibration: List[np.ndarray] = []
        for runtime in settings.runtimes:
            column, precision, backend = RUNTIMES[runtime]
            try:
                if backend is None:
                    model = subject.model
                else:
                    if onnx_file is None:
                        onnx_file = osp.join(settings.out_dir, f'{key}.onnx')
                        from ..deployment import export_onnx
                        with quiet_logger():
                            export_onnx(subject.cfg, checkpoint, onnx_file)
                        entry['onnx_file'] = onnx_file
                    model_file = onnx_file
                    if precision == 'int8':
                        if not calibration:
                            reference = models.get('onnxruntime') or runtime_model(subject, onnx_file, 'onnxruntime',
                                                                                   settings.threads)
                            count = (settings.calibration_photos if checkpoint else
                                     min(settings.calibration_photos, settings.speed_calibration_photos))
                            calibration = preprocessed_inputs(reference, subject, calibration_photos, max(count, 1))
                            entry['calibration_images'] = len(calibration)
                        model_file = quantized_file(subject, onnx_file, backend, calibration, settings.out_dir)
                    model = runtime_model(subject, model_file, backend, settings.threads)
            except Unavailable as error:
                entry['unavailable'][runtime] = str(error)
                log(f'  {column}: unavailable ({error})')
                continue
            except Exception as error:  # one failing runtime should not lose the whole run's figures
                entry['unavailable'][runtime] = f'failed: {type(error).__name__}: {error}'
                log(f'  {column}: failed ({type(error).__name__}: {error})')
                continue
            network = time_calls(network_fn(model, subject), **timed)
            end_to_end_model = model
            if backend is not None:  # end-to-end with the post-processing in the graph
                graph_file = postprocessed_file(subject, model_file)
                end_to_end_model = runtime_model(subject, graph_file, backend, settings.threads)
                entry['end_to_end_postprocessing'] = 'in the ONNX graph'
            models[runtime] = end_to_end_model  # as shipped: what the label-map agreement runs
            end_to_end = time_calls(no_grad(subject.end_to_end_call(end_to_end_model)), **timed)
            figures = dict(network=median(network), end_to_end=median(end_to_end), network_samples=network,
                           end_to_end_samples=end_to_end)
            detections = count_detections(subject, end_to_end_model)
            if detections is not None:
                figures['detections'] = detections
            entry['figures'][runtime] = figures
            log(f'  {column}: network {figures["network"]:.2f} ms, end-to-end {figures["end_to_end"]:.2f} ms')
        if key == 'google_dm05':
            results['litert'] = litert_comparison(google_file, models, subject.pipeline, agreement_photos,
                                                  settings, timed, log)
        del models, subject
    # The peak again, where other processes may have left more of the machine: the floor takes the best of both.
    results['peak'] = peak = measure_peak(settings.threads, settings.gemm_size, peak)
    for entry in results['models'].values():
        if 'flops' in entry:
            entry['floor_ms'] = floor_ms(entry['flops'], peak['peak_gflops'])
    results['targets'] = targets(results)
    results['duration_s'] = time.time() - start
    results['machine']['busy_cpus_after_run'] = busy_cpus()
    return results


def count_detections(subject: Subject, model: BaseModel) -> Optional[int]:
    """Boxes the end-to-end run returns (detection), which shows the NMS load; None for segmentation."""
    if subject.host.task != 'detection':
        return None
    with torch.no_grad():
        return len(subject.end_to_end_call(model)()[0].pred_instances)


def litert_comparison(google_file: str, models: Dict[str, BaseModel], pipeline: Callable[[dict], dict],
                      photos: Sequence[str],
                      settings: DeploySettings, timed: Dict, log: Callable[[str], None]) -> Dict:
    """LiteRT's latency on Google's file, and the label-map agreement of each of our runtimes with its float output."""
    try:
        litert = LiteRTModel(google_file, settings.threads)
    except ImportError as error:
        log(f'  LiteRT: unavailable ({error})')
        return dict(file=google_file, unavailable=str(error))
    inputs = (np.random.RandomState(0).rand(1, *litert.input_size, 3) * 2 - 1).astype(np.float32)
    network = time_calls(lambda: litert.invoke(inputs), **timed)
    result = dict(file=google_file, network=median(network), network_samples=network, agreement={})
    log(f'  LiteRT: network {result["network"]:.2f} ms')
    for runtime, model in models.items():
        if RUNTIMES[runtime][2] is None:  # PyTorch: its float parity with LiteRT is tested, and it is the slowest
            continue
        per_photo = label_agreement(model, pipeline, litert, photos)
        result['agreement'][runtime] = dict(per_photo=per_photo, mean=float(np.mean(list(per_photo.values())))
                                            if per_photo else None)
        if per_photo:
            log(f'  {RUNTIMES[runtime][0]}: label maps agree with LiteRT float on '
                f'{result["agreement"][runtime]["mean"]:.2%} of pixels ({len(per_photo)} photos)')
    return result


# ---------------------------------------------------------------------------------------------------------------
# Targets


def best(entry: Dict, precision: str, figure: str = 'network') -> Optional[Tuple[str, float]]:
    """(runtime, ms) of the fastest runtime of ``precision`` for ``figure``; None when none was measured."""
    candidates = [(runtime, figures[figure]) for runtime, figures in entry.get('figures', {}).items()
                  if RUNTIMES[runtime][1] == precision]
    return min(candidates, key=lambda item: item[1]) if candidates else None


def target_row(figure: str, comparison: str, limit: float, measured: Optional[float], detail: str,
               at_least: bool = False) -> Dict:
    met = None if measured is None else (measured >= limit if at_least else measured <= limit)
    return dict(figure=figure, target=f'{">=" if at_least else "<="} {limit:g}', limit=limit, at_least=at_least,
                comparison=comparison, measured=measured, met=met, detail=detail)


def targets(results: Dict) -> List[Dict]:
    """Each target as a row: figure, target, measured ratio, met (None: not measured), the figures behind it."""
    models = results['models']
    rows = []

    def ms(runtime_and_ms: Optional[Tuple[str, float]]) -> str:
        return f'{RUNTIMES[runtime_and_ms[0]][0]} {runtime_and_ms[1]:.2f} ms' if runtime_and_ms else 'not measured'

    def ratio(a: Optional[Tuple[str, float]], b: Optional[float]) -> Optional[float]:
        return a[1] / b if a and b else None

    ssdlite = models.get('ssdlite', {})
    ort = ssdlite.get('figures', {}).get('onnxruntime', {}).get('network')
    ort_text = f'ONNX Runtime fp32 {ort:.2f} ms' if ort else 'ONNX Runtime fp32 not measured'
    fp32, int8 = best(ssdlite, 'fp32'), best(ssdlite, 'int8')
    rows.append(target_row('SSDLite network: best fp32 runtime / ONNX Runtime fp32', 'ratio', 0.75,
                           ratio(fp32, ort), f'{ms(fp32)} / {ort_text}'))
    rows.append(target_row('SSDLite network: best int8 runtime / ONNX Runtime fp32', 'ratio', 0.3,
                           ratio(int8, ort), f'{ms(int8)} / {ort_text}'))
    for key, label in (('ssdlite', 'SSDLite, worst-case NMS load'), ('deeplab', 'Mobile DeepLabv3 512'),
                       ('google_dm05', 'Google DM0.5 Mobile DeepLabv3 257')):
        entry = models.get(key, {})
        runtime = best(entry, 'fp32')
        measured = detail = None
        if runtime:
            figures = entry['figures'][runtime[0]]
            measured = figures['end_to_end'] / figures['network']
            boxes = (f', score_thr 0: {entry["post_processing"]["nms_pre"]} boxes a level into NMS, '
                     f'{figures["detections"]} out' if 'detections' in figures else '')
            detail = (f'{RUNTIMES[runtime[0]][0]} (best fp32 network): end-to-end {figures["end_to_end"]:.2f} ms / '
                      f'network {figures["network"]:.2f} ms{boxes}')
        rows.append(target_row(f'{label}: end-to-end / network', 'ratio', 1.2, measured, detail or 'not measured'))
    google = models.get('google_dm05', {})
    litert = results.get('litert') or {}
    reference = litert.get('network')
    litert_text = f'LiteRT {reference:.2f} ms' if reference else 'LiteRT not measured'
    fp32, int8 = best(google, 'fp32'), best(google, 'int8')
    rows.append(target_row('Google DM0.5 converted, network: our best fp32 / LiteRT on Google\'s file', 'ratio',
                           0.85, ratio(fp32, reference), f'{ms(fp32)} / {litert_text}'))
    rows.append(target_row('Google DM0.5 converted, network: our best int8 / LiteRT on Google\'s file', 'ratio',
                           0.4, ratio(int8, reference), f'{ms(int8)} / {litert_text}'))
    agreement = (litert.get('agreement') or {}).get(int8[0]) if int8 else None
    photos = len(agreement['per_photo']) if agreement else 0
    rows.append(target_row('Google DM0.5 int8 (best int8 runtime) label maps = LiteRT float argmax, pixels',
                           'fraction', 0.97, agreement['mean'] if agreement else None,
                           f'{RUNTIMES[int8[0]][0] if int8 else "int8"}, {photos} real photos not used for '
                           f'calibration' if agreement else 'not measured', at_least=True))
    peak = results['peak']
    for key, label in (('ssdlite', 'SSDLite'), ('deeplab', 'Mobile DeepLabv3 512'), ('google_dm05', 'Google DM0.5')):
        entry = models.get(key, {})
        fp32 = best(entry, 'fp32')
        measured = fp32[1] / entry['floor_ms'] if fp32 else None
        detail = (f'{ms(fp32)} / ({entry["flops"] / 1e9:.2f} GFLOP at {peak["peak_gflops"]:.1f} GFLOP/s = '
                  f'{entry["floor_ms"]:.2f} ms)' if fp32 else 'not measured')
        rows.append(target_row(f'{label} fp32 network / machine floor', 'ratio', 1.5, measured, detail))
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Reports: Markdown, bar chart, files


def markdown_report(results: Dict) -> str:
    """The latency table, the targets table and how they were measured, as Markdown (the README's speed section)."""
    machine, settings, peak = results['machine'], results['settings'], results['peak']
    runtimes = [r for r in RUNTIMES if any(r in m.get('figures', {}) for m in results['models'].values())]
    litert = results.get('litert') or {}
    columns = [RUNTIMES[r][0] for r in runtimes] + (['LiteRT (Google\'s file)'] if litert.get('network') else [])
    lines = ['| model | latency (ms) | ' + ' | '.join(columns) + ' | floor |',
             '|---|---|' + '---|' * (len(columns) + 1)]
    for key, entry in results['models'].items():
        if 'skipped' in entry:
            continue
        for figure, label in FIGURES.items():
            cells = [format_figure(entry['figures'][r][figure]) if r in entry['figures'] else '-' for r in runtimes]
            if litert.get('network'):
                cells.append(format_figure(litert['network']) if key == 'google_dm05' and figure == 'network' else '')
            floor = format_figure(entry['floor_ms']) if figure == 'network' else ''
            lines.append(f'| {entry["name"]} | {label} | ' + ' | '.join(cells) + f' | {floor} |')
    lines += ['', '| target | required | measured | met | figures |', '|---|---|---|---|---|']
    for row in results['targets']:
        measured = '-' if row['measured'] is None else (
            f'{row["measured"]:.2%}' if row['comparison'] == 'fraction' else f'{row["measured"]:.2f}x')
        required = f'{"≥" if row["at_least"] else "≤"} ' + (
            f'{row["limit"]:.0%}' if row['comparison'] == 'fraction' else f'{row["limit"]:g}x')
        met = {True: 'met', False: 'missed', None: 'not measured'}[row['met']]
        lines.append(f'| {row["figure"]} | {required} | {measured} | {met} | {row["detail"]} |')
    busy = machine.get('busy_cpus_before_run')
    post_processing = ' / '.join(sorted({entry['end_to_end_postprocessing'] for entry in results['models'].values()
                                         if 'end_to_end_postprocessing' in entry})) or 'not measured'
    lines += ['', f'CPU: {machine["cpu"]} ({machine["logical_cpus"]} logical CPUs), {settings["threads"]} threads for '
                  f'every runtime, batch 1; CPUs kept busy by other processes: {busy} before the run, '
                  f'{machine.get("busy_cpus_after_run")} after it; torch {machine["torch"]}. Medians of up to '
                  f'{settings["repeats"]} runs (at least {settings["min_repeats"]}, stopping after '
                  f'{settings["max_seconds"]:g} s per figure) after {settings["warmup"]} warm-up runs; run took '
                  f'{results.get("duration_s", 0) / 60:.1f} min.',
              f'Floor: FLOPs (2 x multiply-adds of convolutions and linear layers) / {peak["peak_gflops"]:.1f} '
              'GFLOP/s, '
              f'the higher of two peaks measured in this run: {peak["gemm_gflops"]:.1f} GFLOP/s (PyTorch fp32 GEMM) '
              f'and {peak["conv_gflops"]:.1f} GFLOP/s (ONNX Runtime fp32 dense 3x3 conv); used: '
              f'{peak["peak_source"]}.',
              'Network: the graph on a float input. End-to-end: a decoded uint8 image (detection 480x640; '
              'segmentation the input size) -> test pipeline -> data preprocessor -> network -> post-processing '
              f'(ONNX Runtime / OpenVINO: {post_processing}; PyTorch: the host\'s); detection at score_thr 0 (every '
              'anchor reaches NMS: the worst case). Random weights except Google\'s model, converted from its '
              'TFLite file.']
    photos = results['photos']
    counts = ', '.join(f'{entry["name"]} {entry["calibration_images"]}' for entry in results['models'].values()
                       if 'calibration_images' in entry)
    lines.append(f'int8: static quantization (ONNX Runtime: onnxruntime\'s QDQ, per-channel; OpenVINO: NNCF) '
                 f'calibrated on {photos["calibration_source"]} ({counts}), COCO val2017 photos from '
                 f'the first of the sorted list; label-map agreement on {len(photos["agreement"])} other real photos '
                 '(resized to 257x257), against the argmax of LiteRT\'s float output.')
    for entry in results['models'].values():
        for runtime, reason in entry.get('unavailable', {}).items():
            lines.append(f'{entry["name"]}, {RUNTIMES[runtime][0]}: not measured ({reason}).')
        if 'skipped' in entry:
            lines.append(f'{entry["name"]}: not measured ({entry["skipped"]}).')
    if busy is not None and busy + settings['threads'] > machine['logical_cpus'] + 0.25:
        lines.append(f'Warning: other processes kept {busy} of {machine["logical_cpus"]} CPUs busy before the run; '
                     'latencies are higher and ratios less reliable than on an idle machine.')
    return '\n'.join(lines)


def bar_chart(results: Dict, out_file: str) -> str:
    """A PNG of the latency table: per model, one bar per runtime, network and end-to-end side by side (log scale)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    entries = [(key, e) for key, e in results['models'].items() if e.get('figures')]
    litert = results.get('litert') or {}
    bars = list(RUNTIMES) + ['litert']
    colours = dict(zip(bars, plt.get_cmap('tab10').colors))
    fig, axes = plt.subplots(1, len(FIGURES), figsize=(14, 1.2 + 1.1 * len(entries)), sharey=True)
    height = 0.8 / len(bars)
    for ax, (figure, label) in zip(axes, FIGURES.items()):
        for row, (key, entry) in enumerate(entries):
            values = {r: f[figure] for r, f in entry['figures'].items()}
            if key == 'google_dm05' and figure == 'network' and litert.get('network'):
                values['litert'] = litert['network']
            for i, runtime in enumerate(r for r in bars if r in values):
                y = row + (i - len(values) / 2 + 0.5) * height
                ax.barh(y, values[runtime], height * 0.9, color=colours[runtime])
                ax.text(values[runtime], y, f' {format_figure(values[runtime])}', va='center', fontsize=7)
            if figure == 'network':
                ax.plot([entry['floor_ms']] * 2, [row - 0.4, row + 0.4], color='black', linestyle=':')
        ax.set_xscale('log')
        ax.set_xlabel(f'{label} latency (ms, log scale)')
        ax.set_yticks(range(len(entries)), [e['name'] for _, e in entries], fontsize=8)
        ax.invert_yaxis()
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[r]) for r in bars]
    labels = [RUNTIMES[r][0] if r in RUNTIMES else "LiteRT (Google's file)" for r in bars]
    handles.append(plt.Line2D([0], [0], color='black', linestyle=':'))
    labels.append('floor (FLOPs / measured peak)')
    fig.legend(handles, labels, loc='lower center', ncol=len(labels), fontsize=8)
    machine = results['machine']
    fig.suptitle(f'Batch 1, {results["settings"]["threads"]} threads, {machine["cpu"]}; '
                 f'CPUs busy before the run: {machine.get("busy_cpus_before_run")}', fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    fig.savefig(out_file, dpi=110)
    plt.close(fig)
    return out_file


def write_reports(results: Dict, out_dir: str) -> Dict[str, str]:
    """``deploy_benchmark.json``, ``deploy_benchmark.md`` and ``deploy_benchmark.png`` in ``out_dir``."""
    os.makedirs(out_dir, exist_ok=True)
    files = {ext: osp.join(out_dir, f'deploy_benchmark.{ext}') for ext in ('json', 'md', 'png')}
    with open(files['json'], 'w') as f:
        json.dump(results, f, indent=1)
    with open(files['md'], 'w') as f:
        f.write(markdown_report(results) + '\n')
    bar_chart(results, files['png'])
    return files


README_BEGIN = '<!-- deploy benchmark: begin (generated by tools/analysis_tools/benchmark.py --readme) -->'
README_END = '<!-- deploy benchmark: end -->'


def replace_readme_table(readme: str, markdown: str) -> None:
    """Put ``markdown`` between the README's begin and end markers, replacing what was there."""
    with open(readme) as f:
        text = f.read()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ValueError(f'{readme} has no "{README_BEGIN}" ... "{README_END}" block to replace')
    with open(readme, 'w') as f:
        f.write(text[:begin + len(README_BEGIN)] + '\n' + markdown.strip() + '\n' + text[end:])
