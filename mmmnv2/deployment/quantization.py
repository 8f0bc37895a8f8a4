"""Post-training int8 quantization of an exported model, with an accuracy guard.

``quantize_model`` takes a checkpoint (exported to fp32 ONNX first) or an fp32 ONNX file and writes an int8 ONNX
file in the QDQ form (QuantizeLinear/DequantizeLinear pairs around the quantized layers), calibrated on images of
the config's own *train* set (the val set stays unseen, as it scores the result) through the config's test pipeline
and the runner's data preprocessor, i.e. exactly what the network sees at test time.

- ``backend='onnxruntime'``: ``onnxruntime.quantization.quantize_static``, QDQ, int8 activations and weights with
  per-channel weight scales, MinMax calibration (onnxruntime's documented first choice, "S8S8 with QDQ",
  https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html).
- ``backend='openvino'``: NNCF's ``nncf.quantize`` (default preset: symmetric int8, per-channel weights, fast bias
  correction) on the ONNX model, NNCF's ONNX backend. The result stays an ONNX file rather than OpenVINO IR: the
  same file type, metadata (host, class names) and runner checks as the fp32 file, ``tools/test.py``,
  ``tools/infer.py`` and the benchmark take it unchanged, and OpenVINO reads the QDQ pairs into its own int8
  execution (https://docs.openvino.ai/ "Low Precision Transformations"). Layers are named as in the fp32 file in
  both backends, so one list of sensitive layers serves both.

The accuracy guard evaluates the fp32 and the int8 file in the chosen runtime on the config's val set with the
host's evaluator (MMEngine's test loop, the config's ``val_dataloader``/``val_evaluator``). Where int8 loses more
than ``max_drop`` points (mAP@0.5 in percent, mIoU), it quantizes again with the sensitive layers kept in float:
the convolution(s) reading the image and the convolutions that produce the graph outputs (SSDLite's class and box
predictors, the decode head's classifier), the layers known to be most sensitive to int8 (Krishnamoorthi,
"Quantizing deep convolutional networks for efficient inference: A whitepaper", 2018, sec. 3.3 / 4: first and last
layers). Both attempts and the layers kept in float are reported, and written as JSON beside the int8 file.
"""
import ast
import copy
import json
import os.path as osp
import tempfile
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.config import Config
from mmengine.registry import DATASETS, init_default_scope

from ..utils import config_host, make_output_folder, refuse_overwriting_inputs, replace_when_written
from .graph_format import INPUT_NAME, import_deploy_dependency
from .runner import exported_config, init_exported_model, network_inputs
from .sessions import check_num_threads, file_backend

# MMDetection's CocoMetric logs fractions, MMSegmentation's IoUMetric percentages; the guard speaks in points.
POINTS_PER_UNIT = {'mmdet': 100.0, 'mmseg': 1.0}
CHECKPOINT_EXTENSIONS = ('.pth', '.pt')


def sensitive_layers(onnx_file: str) -> Dict[str, str]:
    """The graph's first and last convolutions: node name -> the PyTorch module it was exported from.

    First: the Conv nodes that read the graph input. Last: for each graph output, the Conv node found by walking
    back from it through non-Conv nodes (reshapes, activations). The module path comes from the exporter's
    ``pkg.torch.onnx.name_scopes`` node metadata, where present.
    """
    onnx = import_deploy_dependency('onnx')
    graph = onnx.load(onnx_file, load_external_data=False).graph
    producer = {output: node for node in graph.node for output in node.output}
    found = [node for node in graph.node if node.op_type == 'Conv' and INPUT_NAME in node.input]
    for output in graph.output:
        pending, seen = [output.name], set()
        while pending:
            node = producer.get(pending.pop())
            if node is None or node.name in seen:
                continue
            seen.add(node.name)
            if node.op_type == 'Conv':
                found.append(node)
            else:
                pending += list(node.input)
    return {node.name: module_path(node) for node in found}  # in graph order: first, then per output


def module_path(node) -> str:
    """'bbox_head.cls_convs.0.1' for a node exported from that module (the torch exporter's name scopes)."""
    for entry in node.metadata_props:
        if entry.key == 'pkg.torch.onnx.name_scopes':
            scopes = [scope for scope in ast.literal_eval(entry.value) if scope]
            if len(scopes) >= 2:  # [..., module path, operator]
                path = scopes[-2]
                return path[len('model.'):] if path.startswith('model.') else path
    return ''


def calibration_inputs(cfg: Config, model_file: str, count: int) -> List[np.ndarray]:
    """``count`` images of the config's train set (evenly spread over it, in order), each as the runner of the fp32
    ``model_file`` feeds it (``ExportedModelRunner.file_inputs``): the test pipeline (no augmentation) and the
    runner's data preprocessor give the (1, 3, H, W) float network input; a file with the pre-processing takes
    the image resized to its image size, (1, H, W, 3) uint8 RGB, and does the rest itself."""
    if not isinstance(count, int) or count < 1:
        raise ValueError(f'calib_images must be a positive integer, got {count!r}')
    runner = init_exported_model(cfg, model_file)
    init_default_scope(config_host(cfg).scope)
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    while 'dataset' in dataset_cfg and 'pipeline' not in dataset_cfg:  # RepeatDataset and similar wrappers
        dataset_cfg = dataset_cfg.dataset
    # the runner's test pipeline: the config's, or for a file with the pre-processing, a resize to its image size
    dataset_cfg.pipeline = copy.deepcopy(runner.cfg.test_dataloader.dataset.pipeline)
    dataset = DATASETS.build(dataset_cfg)
    if len(dataset) == 0:
        raise ValueError('the config\'s train set is empty: there are no images to calibrate on')
    indices = np.unique(np.linspace(0, len(dataset) - 1, min(count, len(dataset))).round().astype(int))
    return [runner.file_inputs(batch)
            for batch in network_inputs(runner.data_preprocessor, (dataset[int(i)] for i in indices))]


def quantize_onnxruntime(fp32_file: str, out_file: str, inputs: Sequence[np.ndarray],
                         exclude: Sequence[str] = ()) -> str:
    """onnxruntime's static QDQ quantization: int8 activations and weights, per-channel weight scales, MinMax."""
    quantization = import_deploy_dependency('onnxruntime.quantization')

    class Reader(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(inputs)

        def get_next(self) -> Optional[Dict[str, np.ndarray]]:
            batch = next(self.batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    quantization.quantize_static(
        fp32_file, out_file, Reader(), quant_format=quantization.QuantFormat.QDQ, per_channel=True,
        activation_type=quantization.QuantType.QInt8, weight_type=quantization.QuantType.QInt8,
        calibrate_method=quantization.CalibrationMethod.MinMax, nodes_to_exclude=list(exclude))
    copy_metadata(fp32_file, out_file)
    return out_file


def quantize_nncf(fp32_file: str, out_file: str, inputs: Sequence[np.ndarray], exclude: Sequence[str] = ()) -> str:
    """NNCF's post-training quantization (default preset) on the ONNX model, layers in ``exclude`` kept float."""
    onnx = import_deploy_dependency('onnx')
    nncf = import_deploy_dependency('nncf')
    model = onnx.load(fp32_file)
    ignored = nncf.IgnoredScope(names=list(exclude)) if exclude else None
    quantized = nncf.quantize(model, nncf.Dataset([{INPUT_NAME: batch} for batch in inputs]),
                              subset_size=len(inputs), ignored_scope=ignored)
    onnx.save(quantized, out_file)
    copy_metadata(fp32_file, out_file)
    return out_file


QUANTIZERS = {'onnxruntime': quantize_onnxruntime, 'openvino': quantize_nncf}


def copy_metadata(source: str, target: str) -> None:
    """Give ``target`` the metadata_props of ``source`` (host, class names) if the quantizer dropped them."""
    onnx = import_deploy_dependency('onnx')
    wanted = {p.key: p.value for p in onnx.load(source, load_external_data=False).metadata_props}
    model = onnx.load(target)
    if {p.key: p.value for p in model.metadata_props} == wanted:
        return
    del model.metadata_props[:]
    for key, value in wanted.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, target)


def evaluate(cfg: Config, onnx_file: str, backend: str, num_threads: Optional[int], work_dir: str) -> float:
    """The host metric (``Host.metric``) of ``onnx_file`` in ``backend`` on the config's val set, in points."""
    from mmengine.runner import Runner
    host = config_host(cfg)
    # the config with the file's runner, and for a file with the pre-processing the val pipeline resizing to its size
    eval_cfg = exported_config(cfg, onnx_file, num_threads, backend)
    eval_cfg.load_from = None
    eval_cfg.resume = False
    eval_cfg.launcher = 'none'
    eval_cfg.test_dataloader = copy.deepcopy(eval_cfg.val_dataloader)
    if not onnx_file.endswith('.onnx'):
        # litert_torch imports JAX, whose threads a forked data-loader worker may deadlock on: load in-process.
        eval_cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    eval_cfg.test_evaluator = copy.deepcopy(cfg.val_evaluator)
    eval_cfg.test_cfg = dict(type='TestLoop')
    eval_cfg.work_dir = work_dir
    # Distinct names per evaluation: MMEngine keeps one logger and one visualizer instance per name per process.
    eval_cfg.experiment_name = f'{osp.splitext(osp.basename(onnx_file))[0]}_{backend}_{time.time_ns()}'
    if eval_cfg.get('visualizer') is not None:
        eval_cfg.visualizer.name = eval_cfg.experiment_name
    metrics = Runner.from_cfg(eval_cfg).test()
    if host.metric not in metrics:
        raise KeyError(f'the val evaluator did not report {host.metric}; it reported {sorted(metrics)}')
    return float(metrics[host.metric]) * POINTS_PER_UNIT[host.scope]


def quantize_model(config: Union[str, Config], model_file: str, out_file: str, backend: Optional[str] = None,
                   calib_images: int = 100, max_drop: float = 1.0, num_threads: Optional[int] = None,
                   work_dir: Optional[str] = None, preprocess: bool = False,
                   image_size: Optional[Tuple[int, int]] = None, postprocess: bool = False) -> Dict:
    """Write the int8 file ``out_file`` for ``backend`` and its report (``out_file`` with ``.json`` for its extension).

    ``out_file``: an ``.onnx`` (``backend`` 'onnxruntime', the default, or 'openvino'), or a ``.tflite`` / ``.pte``
    (LiteRT / ExecuTorch through their PT2E quantizers, ``mobile_quantization``; ``backend`` follows the file).
    ``model_file``: a checkpoint (exported first, to ``<out_file stem>_fp32.<extension>``) or, for ``.onnx``, an fp32
    ONNX file of the config. ``calib_images``: train images for calibration. ``max_drop``: the most points (mAP@0.5
    in percent, mIoU) int8 may lose against fp32 on the val set before the sensitive layers are kept in float (a
    negative margin always takes that path). ``num_threads``: the runtime's threads for the evaluations.
    ``work_dir``: logs of the evaluations (default: a temporary folder, removed). ``preprocess``, ``image_size``,
    ``postprocess`` (``.tflite`` / ``.pte`` from a checkpoint): image in, result out, as ``export_mobile`` takes
    them; calibrated on the train images resized to the image size, the pre- and post-processing left unquantized
    (``mobile_quantization.quantize_mobile``), scored on val images resized to it. Returns the report: the fp32 and
    int8 metrics, each attempt's drop and the layers it kept in float, and ``within_margin``.
    """
    backend = file_backend(out_file, backend)
    check_num_threads(num_threads)
    mobile = not out_file.endswith('.onnx')
    if not osp.isfile(model_file):
        raise FileNotFoundError(f'model_file not found: {model_file}')
    if mobile and not model_file.lower().endswith(CHECKPOINT_EXTENSIONS):
        raise ValueError(f'model_file of an int8 {osp.splitext(out_file)[1]} file must be a checkpoint '
                         f'({", ".join(CHECKPOINT_EXTENSIONS)}): the PT2E quantizers start from the PyTorch model, '
                         f'got {model_file}')
    if not model_file.lower().endswith(CHECKPOINT_EXTENSIONS + ('.onnx',)):
        raise ValueError(f'model_file must be a checkpoint ({", ".join(CHECKPOINT_EXTENSIONS)}) or an fp32 .onnx '
                         f'file, got {model_file}')
    if (preprocess or postprocess or image_size is not None) and not mobile:
        raise ValueError(f'preprocess, image_size and postprocess are for int8 .tflite / .pte files (the PT2E '
                         f'quantizers leave them unquantized); an int8 .onnx file is the network only, got {out_file}')
    if not isinstance(max_drop, (int, float)):
        raise TypeError(f'max_drop must be a number of points, got {max_drop!r}')
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    host = config_host(cfg)
    stem, extension = osp.splitext(out_file)
    exported = not model_file.lower().endswith('.onnx')
    fp32_out = f'{stem}_fp32{extension if mobile else ".onnx"}'
    refuse_overwriting_inputs([out_file, f'{stem}.json'] + ([fp32_out] if exported else []),
                              (model_file, cfg.filename), 'output (int8 model, report or exported fp32 model)')
    make_output_folder(out_file)
    if not exported:
        fp32_file = model_file
    elif mobile:
        from .mobile_export import MOBILE_FORMATS, export_mobile
        fmt = next(f for f, ext in MOBILE_FORMATS.items() if ext == extension)
        fp32_file = export_mobile(cfg, model_file, fp32_out, fmt, preprocess=preprocess, postprocess=postprocess,
                                  image_size=image_size)
    else:
        from .export import export_onnx
        fp32_file = export_onnx(cfg, model_file, fp32_out)
    inputs = calibration_inputs(cfg, fp32_file, calib_images)
    if mobile:
        from .mobile_quantization import mobile_quantizer, sensitive_mobile_modules
        quantize = mobile_quantizer(cfg, model_file, out_file, preprocess, image_size, postprocess)
        sensitive = sensitive_mobile_modules(cfg, model_file)
    else:
        quantize, sensitive = QUANTIZERS[backend], sensitive_layers(fp32_file)

    with tempfile.TemporaryDirectory() as temporary:
        logs = work_dir or temporary
        fp32 = round(evaluate(cfg, fp32_file, backend, num_threads, osp.join(logs, 'fp32')), 4)
        attempts = []
        for exclude in ({}, sensitive):
            with replace_when_written(out_file) as partial:
                quantize(fp32_file, partial, inputs, list(exclude))
            int8 = evaluate(cfg, out_file, backend, num_threads, osp.join(logs, f'int8_{len(attempts)}'))
            attempts.append(dict(int8=round(int8, 4), drop=round(fp32 - int8, 4), kept_fp32=exclude))
            if attempts[-1]['drop'] <= max_drop:
                break
    report = dict(
        config=cfg.filename, source=osp.abspath(model_file), fp32_model=osp.abspath(fp32_file),
        int8_model=osp.abspath(out_file), backend=backend, metric=host.metric, unit='points',
        calibration=dict(split='train', images=len(inputs)), max_drop=max_drop, fp32=fp32,
        int8=attempts[-1]['int8'], drop=attempts[-1]['drop'], kept_fp32=attempts[-1]['kept_fp32'],
        within_margin=attempts[-1]['drop'] <= max_drop, attempts=attempts)
    with replace_when_written(f'{stem}.json') as temporary, open(temporary, 'w') as f:
        json.dump(report, f, indent=1)
    return report


def describe_report(report: Dict) -> str:
    """The lines the tools print for a ``quantize_model`` report: both metrics, the fallback, the files written."""
    first = report['attempts'][0]
    lines = [f'{report["metric"]} on the val set ({report["backend"]}): fp32 {report["fp32"]:.2f}, int8 '
             f'{first["int8"]:.2f} (drop {first["drop"]:.2f} points)']
    if len(report['attempts']) > 1:
        kept = ', '.join(f'{node} ({module})' if module else node for node, module in report['kept_fp32'].items())
        lines.append(f'drop above {report["max_drop"]:g} points: kept in fp32: {kept}; int8 then '
                     f'{report["int8"]:.2f} (drop {report["drop"]:.2f} points)')
    lines.append(f'Wrote {report["int8_model"]} and its report {osp.splitext(report["int8_model"])[0]}.json')
    return '\n'.join(lines)
