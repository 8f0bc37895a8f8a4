"""The deployment benchmark: every runtime on every model in one run, the machine's floor, LiteRT on Google's file.

One process, one machine, batch 1, the same threads for every runtime (what is measured is data:
``deploy_suite``):

- models: our SSDLite and Mobile DeepLabv3, the hosts' peers (MMDetection's SSDLite, MMSegmentation's DeepLabV3),
  and Google's float Mobile DeepLabv3 (depth multiplier 0.5, output stride 8, 257x257) converted into our model from
  its TFLite file. All but Google's model have random weights (speed does not depend on them, except through the
  boxes reaching NMS: detection runs at ``score_thr`` 0, the worst case);
- runtimes: PyTorch eager (as shipped, ``torch.no_grad``), ONNX Runtime and OpenVINO on the ONNX file, LiteRT on a
  ``.tflite`` and ExecuTorch (XNNPACK) on a ``.pte`` file, each in fp32 and int8 (static quantization: the ONNX
  quantizers on the exported graph, the formats' own PT2E quantizers for ``.tflite`` and ``.pte``, calibrated on the
  same inputs: real photos where they are given, random images otherwise);
- figures: network latency (the graph alone on a float input) and end-to-end latency (a decoded uint8 image ->
  test pipeline -> data preprocessor -> network -> post-processing, as ``mmmnv2.analysis.benchmark`` measures; the
  ONNX files end with the post-processing as operators, the ``.tflite`` and ``.pte`` files hold the network only and
  their runners post-process in the host's code), and for the fp32 files, image in, result out: the decoded uint8
  RGB image straight into a file exported with the pre- and post-processing in it (``--preprocess
  --postprocess``), its boxes / scores / labels or label map out, no Python around it (what an app calls);
- LiteRT (``ai-edge-litert``) running Google's own ``.tflite`` file against the same model converted into ours, on the
  same 257x257 input (and against our ``.tflite`` of it, the two called in turn in one timing loop), and the pixel
  agreement of our int8 label maps with LiteRT's float output on real photos
  (``litert_reference``);
- the machine's floor (``machine_floor``).

Every figure is a median after warm-up, with a repeat count capped by a time budget per figure; every sample is kept.
The reference data (Google's file, the photos) come from ``DeploySettings.data_root``; the reports (Markdown, PNG,
README table) are written by ``tools/analysis_tools/benchmark.py``.
"""
import os
import os.path as osp
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.model import BaseModel

from ..converters import convert_tf_file
from ..deployment import MOBILE_FORMATS, add_postprocess, export_mobile, export_onnx, init_exported_model
from ..deployment.mobile_quantization import quantize_mobile
from ..deployment.quantization import QUANTIZERS
from ..utils import load_checkpoint_file, load_checkpoint_into
from .benchmark import (
    BenchmarkSettings,
    Subject,
    add_missing_loss_cls,
    busy_cpus,
    load_config,
    machine_info,
    quiet_logger,
    time_alternately,
    time_calls,
)
from .complexity import forward_macs
from .deploy_suite import BENCHMARKED_MODELS, GOOGLE_MODEL, RUNTIMES, evaluate_targets
from .litert_reference import LiteRTModel, label_agreement
from .machine_floor import floor_ms, measure_peak

GOOGLE_FILE = 'tflite/deeplabv3_257_mv_gpu.tflite'  # under the data root
CORAL_PHOTOS = ('bird_segmentation.bmp', 'bird.bmp', 'cat.bmp', 'grace_hopper.bmp')  # under images/
COCO_PHOTOS = 'coco_mini_val2017/val2017'
ONNX_POSTPROCESSING = 'in the ONNX graph'  # where the ONNX runtimes' end-to-end figure post-processes
PACKAGE_CONFIGS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim')


@dataclass
class DeploySettings:
    """What the deployment suite measures and how often."""
    out_dir: str = 'work_dirs/deploy_benchmark'
    threads: int = 2
    warmup: int = 2
    repeats: int = 10
    max_seconds: float = 1.5  # per figure: no further repeats once this much time is spent (at least min_repeats)
    min_repeats: int = 3
    models: Sequence[str] = tuple(BENCHMARKED_MODELS)
    runtimes: Sequence[str] = tuple(RUNTIMES)
    data_root: Optional[str] = None  # Google's file and the real photos; None or missing: no LiteRT, random images
    calibration_photos: int = 32  # the first COCO photos (sorted); the others and the Coral photos are for agreement
    speed_calibration_photos: int = 4  # of those, for the models with random weights (their int8 is timed only)
    agreement_photos: Optional[int] = None  # None: every photo not used for calibration
    gemm_size: int = 1536


@dataclass
class SuiteRun:
    """What every model of one run shares."""
    settings: DeploySettings
    base: BenchmarkSettings
    timed: Dict
    calibration_photos: List[str]
    agreement_photos: List[str]
    google_file: Optional[str]  # None: not in the data root
    results: Dict = field(default_factory=dict)


def reference_photos(data_root: Optional[str]) -> Tuple[List[str], List[str]]:
    """(Coral photos, COCO photos sorted by name) under ``data_root``; empty lists where absent."""
    if not data_root or not osp.isdir(data_root):
        return [], []
    coral = [osp.join(data_root, 'images', name) for name in CORAL_PHOTOS
             if osp.isfile(osp.join(data_root, 'images', name))]
    coco_dir = osp.join(data_root, COCO_PHOTOS)
    coco = sorted(osp.join(coco_dir, name) for name in os.listdir(coco_dir)) if osp.isdir(coco_dir) else []
    return coral, coco


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


def runtime_model(subject: Subject, model_file: str, backend: str, threads: int) -> BaseModel:
    """The runner for ``model_file`` on ``backend``."""
    with quiet_logger():
        model = init_exported_model(subject.cfg, model_file, num_threads=threads, backend=backend)
    add_missing_loss_cls(model)  # the runner predicts with the host's head
    return model


class ModelFiles:
    """One model's exported files, each made once when a runtime first needs it: the fp32 ONNX network and its int8
    versions (calibrated once), each with the post-processing appended for the end-to-end figure; the fp32 and int8
    ``.tflite`` and ``.pte`` networks (``export_mobile``, ``quantize_mobile``), which hold the network only."""

    def __init__(self, subject: Subject, checkpoint: Optional[str], run: SuiteRun, entry: Dict) -> None:
        self.subject, self.checkpoint, self.run, self.entry = subject, checkpoint, run, entry
        self.onnx_file: Optional[str] = None
        self.image_in_files: Dict[str, str] = {}  # extension -> the image-in file, written in this run
        self.calibration: List[np.ndarray] = []

    def network(self, runtime: str) -> str:
        """The network file the runtime runs (fp32 or int8)."""
        fmt, precision = RUNTIMES[runtime].file_format, RUNTIMES[runtime].precision
        if fmt in MOBILE_FORMATS:
            return self._mobile_network(fmt, precision)
        if precision == 'fp32':
            return self._onnx()
        backend = RUNTIMES[runtime].backend
        out_file = osp.join(self.run.settings.out_dir, f'{self.subject.name}_int8_{backend}.onnx')
        # The quantizers of mmmnv2.deployment.quantization (onnxruntime's static QDQ, NNCF for OpenVINO) without its
        # accuracy guard, which needs the config's data set (Google's model is checked against LiteRT instead).
        with quiet_logger():
            return QUANTIZERS[backend](self._onnx(), out_file, self._calibration())

    def _onnx(self) -> str:
        if self.onnx_file is None:
            self.onnx_file = osp.join(self.run.settings.out_dir, f'{self.subject.name}.onnx')
            with quiet_logger():
                export_onnx(self.subject.cfg, self.checkpoint, self.onnx_file)
            self.entry['onnx_file'] = self.onnx_file
        return self.onnx_file

    def _mobile_network(self, fmt: str, precision: str) -> str:
        """The ``.tflite`` / ``.pte`` network: fp32 by ``export_mobile``; int8 by the format's own PT2E quantizer
        (``mobile_quantization``) on the ONNX runtimes' calibration inputs, likewise without the accuracy guard."""
        suffix = '' if precision == 'fp32' else '_int8'
        out_file = osp.join(self.run.settings.out_dir, f'{self.subject.name}{suffix}{MOBILE_FORMATS[fmt]}')
        with quiet_logger():
            if precision == 'fp32':
                return export_mobile(self.subject.cfg, self.checkpoint, out_file, fmt)
            return quantize_mobile(self.subject.cfg, self.checkpoint, fmt, out_file, self._calibration())

    def _calibration(self) -> List[np.ndarray]:
        if not self.calibration:
            settings = self.run.settings
            reference = runtime_model(self.subject, self._onnx(), 'onnxruntime', settings.threads)
            count = (settings.calibration_photos if self.checkpoint else
                     min(settings.calibration_photos, settings.speed_calibration_photos))
            self.calibration = preprocessed_inputs(reference, self.subject, self.run.calibration_photos, max(count, 1))
            self.entry['calibration_images'] = len(self.calibration)
        return self.calibration

    def image_in(self, runtime: str) -> str:
        """The fp32 file taking the decoded image of the end-to-end figure and returning the results (``preprocess``
        and ``postprocess`` exports): one ONNX file for the ONNX runtimes, a ``.tflite`` / ``.pte`` file otherwise."""
        fmt = RUNTIMES[runtime].file_format
        extension = MOBILE_FORMATS.get(fmt, '.onnx')
        if extension in self.image_in_files:  # the ONNX runtimes share one file
            return self.image_in_files[extension]
        out_file = osp.join(self.run.settings.out_dir, f'{self.subject.name}_image_in{extension}')
        options = dict(preprocess=True, postprocess=True, image_size=self.subject.image_size)
        with quiet_logger():
            if fmt in MOBILE_FORMATS:
                export_mobile(self.subject.cfg, self.checkpoint, out_file, fmt, **options)
            else:
                export_onnx(self.subject.cfg, self.checkpoint, out_file, **options)
        self.image_in_files[extension] = out_file
        return out_file

    def end_to_end(self, runtime: str, network_file: str) -> str:
        """The file of the end-to-end figure: an ONNX network with the config's post-processing appended as ONNX
        operators, written beside it; a ``.tflite`` / ``.pte`` network as it is (its runner post-processes in the
        host's code)."""
        if RUNTIMES[runtime].file_format != 'onnx':
            return network_file
        self.entry['end_to_end_postprocessing'] = ONNX_POSTPROCESSING
        with quiet_logger():
            return add_postprocess(self.subject.cfg, network_file, osp.splitext(network_file)[0] + '_postprocess.onnx')


def network_fn(model: BaseModel, subject: Subject) -> Callable[[], object]:
    """One network pass on a random float input of the model's size."""
    inputs = np.random.RandomState(0).randn(1, 3, *subject.input_size).astype(np.float32)
    if hasattr(model, 'forward_network'):  # a runner: the graph alone, as the PyTorch model's mode='tensor'
        return lambda: model.forward_network(inputs)
    return no_grad(lambda: model(torch.from_numpy(inputs), mode='tensor'))


def no_grad(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` run under ``torch.no_grad`` (PyTorch as shipped; the runners' post-processing runs in PyTorch too)."""
    def run() -> object:
        with torch.no_grad():
            return fn()

    return run


def count_detections(subject: Subject, model: BaseModel) -> Optional[int]:
    """Boxes the end-to-end run returns (detection), which shows the NMS load; None for segmentation."""
    if subject.host.task != 'detection':
        return None
    with torch.no_grad():
        return len(subject.end_to_end_call(model)()[0].pred_instances)


def measure_runtime(runtime: str, subject: Subject, files: ModelFiles, run: SuiteRun) -> Tuple[Dict, BaseModel]:
    """(figures, the model as shipped end to end) of one runtime: the network alone, then end to end (ONNX runners:
    with the post-processing in the graph)."""
    backend = RUNTIMES[runtime].backend
    if backend is None:
        model = end_to_end_model = subject.model
    else:
        network_file = files.network(runtime)
        model = runtime_model(subject, network_file, backend, run.settings.threads)
        end_to_end_file = files.end_to_end(runtime, network_file)
        end_to_end_model = (model if end_to_end_file == network_file else
                            runtime_model(subject, end_to_end_file, backend, run.settings.threads))
    network = time_calls(network_fn(model, subject), **run.timed)
    end_to_end = time_calls(no_grad(subject.end_to_end_call(end_to_end_model)), **run.timed)
    figures = dict(network=statistics.median(network), end_to_end=statistics.median(end_to_end),
                   network_samples=network, end_to_end_samples=end_to_end)
    detections = count_detections(subject, end_to_end_model)
    if detections is not None:
        figures['detections'] = detections
    if backend is not None and RUNTIMES[runtime].precision == 'fp32':
        try:
            figures.update(image_in_figures(runtime, subject, files, run))
        except Exception as error:  # the network's figures stand without it
            files.entry.setdefault('image_in_unavailable', {})[runtime] = first_line(error)
    return figures, end_to_end_model


def image_in_figures(runtime: str, subject: Subject, files: ModelFiles, run: SuiteRun) -> Dict:
    """The image-in, result-out figure: the end-to-end figure's decoded image (as RGB) into the file with the pre-
    and post-processing (``ModelFiles.image_in``), in the runtime's session, with no Python around it."""
    model = runtime_model(subject, files.image_in(runtime), RUNTIMES[runtime].backend, run.settings.threads)
    image = np.ascontiguousarray(subject.image[None])  # (1, H, W, 3) uint8, the file's image size
    times = time_calls(lambda: model.session.run(image), **run.timed)
    return dict(image_in=statistics.median(times), image_in_samples=times, image_in_file=model.model_file)


def first_line(error: Exception) -> str:
    """``Type: first line of the message`` (converters raise errors of many lines: their whole graph)."""
    return f'{type(error).__name__}: ' + (str(error).strip().splitlines() or [''])[0]


def google_checkpoint(cfg, tflite_file: str, out_dir: str) -> str:
    """Google's TFLite file converted into the config's model; returns the checkpoint path."""
    state_dict, meta = convert_tf_file(tflite_file, cfg, None)
    checkpoint = osp.join(out_dir, f'{GOOGLE_MODEL}.pth')
    torch.save(dict(state_dict=state_dict, meta=meta), checkpoint)
    return checkpoint


def measure_model(key: str, run: SuiteRun, log: Callable[[str], None]) -> Dict:
    """Every runtime's figures of one model (and, for Google's model, the LiteRT comparison into the results)."""
    name, config = BENCHMARKED_MODELS[key]
    if key == GOOGLE_MODEL and run.google_file is None:
        return dict(name=name, config=config, skipped=f'{GOOGLE_FILE} is not in the data root '
                                                      f'({run.settings.data_root})')
    log(f'{name}: {config}')
    # the package's own configs are in its .mim folder (installed as package data, links into a checkout)
    cfg = load_config(config if config.startswith(('mmdet::', 'mmseg::')) else osp.join(PACKAGE_CONFIGS, config))
    subject = Subject(key, config, cfg, run.base)
    checkpoint = None
    if key == GOOGLE_MODEL:
        checkpoint = google_checkpoint(subject.cfg, run.google_file, run.settings.out_dir)
        load_checkpoint_into(subject.model, load_checkpoint_file(checkpoint), checkpoint)
    macs = forward_macs(subject.model, *subject.input_size)
    entry = dict(name=name, **subject.info, macs=macs, flops=2 * macs, figures={}, unavailable={})
    files = ModelFiles(subject, checkpoint, run, entry)
    shipped: Dict[str, BaseModel] = {}  # runtime -> the model as shipped (end to end)
    for runtime in run.settings.runtimes:
        column = RUNTIMES[runtime].column
        try:
            entry['figures'][runtime], shipped[runtime] = measure_runtime(runtime, subject, files, run)
        except ImportError as error:  # the runtime is not installed: its column records why
            entry['unavailable'][runtime] = str(error)
            log(f'  {column}: unavailable ({error})')
            continue
        except Exception as error:  # one failing runtime (a peer a converter refuses) should not lose the run
            reason = first_line(error)
            entry['unavailable'][runtime] = f'failed: {reason}'
            log(f'  {column}: failed ({reason})')
            continue
        figures = entry['figures'][runtime]
        image_in = (f', image in, result out {figures["image_in"]:.2f} ms' if 'image_in' in figures else
                    f', image in, result out failed ({entry["image_in_unavailable"][runtime]})'
                    if runtime in entry.get('image_in_unavailable', {}) else '')
        log(f'  {column}: network {figures["network"]:.2f} ms, end-to-end {figures["end_to_end"]:.2f} ms{image_in}')
    if key == GOOGLE_MODEL:
        run.results['litert'] = litert_comparison(run.google_file, shipped, subject.pipeline, run, log)
    return entry


def litert_comparison(google_file: str, models: Dict[str, BaseModel], pipeline: Callable[[dict], dict],
                      run: SuiteRun, log: Callable[[str], None]) -> Dict:
    """LiteRT's latency on Google's file, and the label-map agreement of each of our runtimes with its float output."""
    try:
        litert = LiteRTModel(google_file, run.settings.threads)
    except ImportError as error:
        log(f'  LiteRT: unavailable ({error})')
        return dict(file=google_file, unavailable=str(error))
    inputs = litert.random_input()
    ours = models.get('litert')  # the runner of our .tflite, where that runtime was measured
    if ours is None:
        network = time_calls(lambda: litert.invoke(inputs), **run.timed)
        result = dict(file=google_file, network=statistics.median(network), network_samples=network, agreement={})
    else:
        # Our .tflite and Google's file in the same interpreter, called in turn, so that their ratio (a target)
        # does not depend on what other processes do meanwhile.
        our_file = LiteRTModel(ours.model_file, run.settings.threads)
        our_inputs = our_file.random_input()
        network, our_network = time_alternately([lambda: litert.invoke(inputs), lambda: our_file.invoke(our_inputs)],
                                                **run.timed)
        result = dict(file=google_file, network=statistics.median(network), network_samples=network, agreement={},
                      ours_file=ours.model_file, ours_network=statistics.median(our_network),
                      ours_network_samples=our_network)
        log(f'  LiteRT, our .tflite timed in turn with Google\'s file: network {result["ours_network"]:.2f} ms')
    log(f'  LiteRT, Google\'s file: network {result["network"]:.2f} ms')
    for runtime, model in models.items():
        if RUNTIMES[runtime].backend is None:  # PyTorch: its float parity with LiteRT is tested, and it is slowest
            continue
        per_photo = label_agreement(model, pipeline, litert, run.agreement_photos)
        mean = float(np.mean(list(per_photo.values()))) if per_photo else None
        result['agreement'][runtime] = dict(per_photo=per_photo, mean=mean)
        if per_photo:
            log(f'  {RUNTIMES[runtime].column}: label maps agree with LiteRT float on {mean:.2%} of pixels '
                f'({len(per_photo)} photos)')
    return result


def run_deploy_benchmark(settings: Optional[DeploySettings] = None, log: Callable[[str], None] = print) -> Dict:
    """Measure every model in every runtime; returns every figure, the floor, LiteRT and the targets."""
    settings = settings or DeploySettings()
    unknown = sorted(set(settings.models) - set(BENCHMARKED_MODELS)) + sorted(set(settings.runtimes) - set(RUNTIMES))
    if unknown:
        raise ValueError(f'unknown models or runtimes {unknown}; models: {list(BENCHMARKED_MODELS)}, runtimes: '
                         f'{list(RUNTIMES)}')
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
    peak = measure_peak(settings.threads, settings.gemm_size)
    coral, coco = reference_photos(settings.data_root)
    agreement = coral + coco[settings.calibration_photos:]
    google_file = osp.join(settings.data_root, GOOGLE_FILE) if settings.data_root else None
    run = SuiteRun(
        settings=settings,
        base=BenchmarkSettings(threads=settings.threads, warmup=settings.warmup, repeats=settings.repeats,
                               train_iters=0, score_thr=0.0, onnx_dir=settings.out_dir),
        timed=dict(warmup=settings.warmup, repeats=settings.repeats, max_seconds=settings.max_seconds,
                   min_repeats=settings.min_repeats),
        calibration_photos=coco[:settings.calibration_photos],
        agreement_photos=agreement if settings.agreement_photos is None else agreement[:settings.agreement_photos],
        google_file=google_file if google_file and osp.isfile(google_file) else None)
    run.results.update(
        machine=machine, settings=asdict(settings), peak=peak, models={}, litert=None,
        photos=dict(calibration=[osp.basename(p) for p in run.calibration_photos],
                    agreement=[osp.basename(p) for p in run.agreement_photos],
                    calibration_source='real photos' if run.calibration_photos else 'random images'))
    for key in settings.models:
        run.results['models'][key] = measure_model(key, run, log)
    results = run.results
    # The peak again, where other processes may have left more of the machine: the floor takes the best of both.
    results['peak'] = peak = measure_peak(settings.threads, settings.gemm_size, peak)
    for entry in results['models'].values():
        if 'flops' in entry:
            entry['floor_ms'] = floor_ms(entry['flops'], peak['peak_gflops'])
    results['targets'] = evaluate_targets(results)
    results['duration_s'] = time.time() - start
    results['machine']['busy_cpus_after_run'] = busy_cpus()
    return results
