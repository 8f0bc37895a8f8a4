"""What the deploy benchmark measures, as data: the models, the runtimes, the figures and the targets, and how each
target's figure is computed from a run's results."""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from ..utils import HOSTS

GOOGLE_MODEL = 'google_dm05'  # converted from Google's TFLite file; the others have random weights
# key -> (name, config)
BENCHMARKED_MODELS = {
    'ssdlite': ('SSDLite 320 (ours)', 'configs/ssdlite/ssdlite_mobilenetv2_8xb24-600e_coco-320x320.py'),
    'ssdlite_peer': ('MMDetection SSDLite 320', HOSTS['mmdet'].benchmark_peer),
    'deeplab': ('Mobile DeepLabv3 512 (ours)',
                'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-os16_4xb4-30k_voc12aug-512x512.py'),
    'deeplab_peer': ('MMSegmentation DeepLabV3 512', HOSTS['mmseg'].benchmark_peer),
    GOOGLE_MODEL: ('Google DM0.5 Mobile DeepLabv3 257, converted',
                   'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-dm0.5-os8_tf-weights_voc12-257x257.py'),
}
PEERS = ('ssdlite_peer', 'deeplab_peer')


@dataclass(frozen=True)
class Runtime:
    column: str  # its column in the tables
    precision: str  # 'fp32' or 'int8'
    backend: Optional[str]  # the runner's backend (``init_exported_model``); None: the PyTorch model
    file_format: str = 'onnx'  # the file it runs: 'onnx' (``export_onnx``) or a ``MOBILE_FORMATS`` key


RUNTIMES = {
    'pytorch': Runtime('PyTorch eager', 'fp32', None),
    'onnxruntime': Runtime('ONNX Runtime', 'fp32', 'onnxruntime'),
    'openvino': Runtime('OpenVINO', 'fp32', 'openvino'),
    'litert': Runtime('LiteRT', 'fp32', 'litert', 'tflite'),
    'executorch': Runtime('ExecuTorch', 'fp32', 'executorch', 'executorch'),
    'onnxruntime_int8': Runtime('ONNX Runtime int8', 'int8', 'onnxruntime'),
    'openvino_int8': Runtime('OpenVINO int8', 'int8', 'openvino'),
    'litert_int8': Runtime('LiteRT int8', 'int8', 'litert', 'tflite'),
    'executorch_int8': Runtime('ExecuTorch int8', 'int8', 'executorch', 'executorch'),
}
# figure -> its row; 'image_in' is measured for the fp32 exported files only (``deploy_benchmark.image_in_figures``)
FIGURES = {'network': 'network', 'end_to_end': 'end-to-end', 'image_in': 'image in, result out'}
END_TO_END_FIGURES = ('end_to_end', 'image_in')  # the end-to-end targets take the fastest of these


@dataclass(frozen=True)
class Target:
    """One target: ``label`` is its row; the figure is ``kind`` (a key of ``TARGET_FIGURES``) of ``model``, met when
    at most ``limit`` (at least, with ``at_least``)."""
    label: str
    kind: str
    model: str
    limit: float
    precision: str = 'fp32'  # of the runtimes taken (the best of them)
    reference: str = ''  # the runtime compared with, for kind 'best_over_runtime'
    at_least: bool = False
    runtime: str = ''  # the runtime taken; '' the fastest of ``precision``


TARGETS = (
    Target('SSDLite network: best fp32 runtime / ONNX Runtime fp32', 'best_over_runtime', 'ssdlite', 0.75,
           reference='onnxruntime'),
    Target('SSDLite network: best int8 runtime / ONNX Runtime fp32', 'best_over_runtime', 'ssdlite', 0.3, 'int8',
           reference='onnxruntime'),
    Target('SSDLite, worst-case NMS load: end-to-end / network', 'end_to_end_over_network', 'ssdlite', 1.2),
    Target('Mobile DeepLabv3 512: end-to-end / network', 'end_to_end_over_network', 'deeplab', 1.2),
    Target('Google DM0.5 Mobile DeepLabv3 257: end-to-end / network', 'end_to_end_over_network', GOOGLE_MODEL, 1.2),
    Target('Google DM0.5 converted, network: our best fp32 / LiteRT on Google\'s file', 'best_over_litert',
           GOOGLE_MODEL, 0.85),
    Target('Google DM0.5 converted, network: our best int8 / LiteRT on Google\'s file', 'best_over_litert',
           GOOGLE_MODEL, 0.4, 'int8'),
    Target('Google DM0.5 converted, network: our .tflite / Google\'s file, both in LiteRT', 'tflite_over_litert',
           GOOGLE_MODEL, 1.05),
    Target('SSDLite network: LiteRT int8 / LiteRT fp32', 'best_over_runtime', 'ssdlite', 0.5, 'int8',
           reference='litert', runtime='litert_int8'),
    Target('SSDLite network: ExecuTorch fp32 / ONNX Runtime fp32', 'best_over_runtime', 'ssdlite', 1.0,
           reference='onnxruntime', runtime='executorch'),
    Target('Google DM0.5 int8 (best int8 runtime) label maps = LiteRT float argmax, pixels', 'agreement_with_litert',
           GOOGLE_MODEL, 0.97, 'int8', at_least=True),
    Target('SSDLite fp32 network / machine floor', 'network_over_floor', 'ssdlite', 1.5),
    Target('Mobile DeepLabv3 512 fp32 network / machine floor', 'network_over_floor', 'deeplab', 1.5),
    Target('Google DM0.5 fp32 network / machine floor', 'network_over_floor', GOOGLE_MODEL, 1.5),
)

Figure = Tuple[Optional[float], str]  # (measured, the figures behind it); None: not measured


def best(entry: Dict, precision: str, figure: str = 'network') -> Optional[Tuple[str, float]]:
    """(runtime, ms) of the fastest runtime of ``precision`` for ``figure``; None when none was measured."""
    candidates = [(runtime, figures[figure]) for runtime, figures in entry.get('figures', {}).items()
                  if RUNTIMES[runtime].precision == precision]
    return min(candidates, key=lambda item: item[1]) if candidates else None


def taken(entry: Dict, target: Target) -> Optional[Tuple[str, float]]:
    """(runtime, network ms) the target takes: its ``runtime``, else the fastest of its ``precision``; None when not
    measured."""
    if not target.runtime:
        return best(entry, target.precision)
    figures = entry.get('figures', {}).get(target.runtime)
    return (target.runtime, figures['network']) if figures else None


def _ms(runtime_and_ms: Optional[Tuple[str, float]]) -> str:
    return f'{RUNTIMES[runtime_and_ms[0]].column} {runtime_and_ms[1]:.2f} ms' if runtime_and_ms else 'not measured'


def _best_over_runtime(target: Target, results: Dict) -> Figure:
    entry = results['models'].get(target.model, {})
    found = taken(entry, target)
    reference = entry.get('figures', {}).get(target.reference, {}).get('network')
    runtime = RUNTIMES[target.reference]
    reference_text = (f'{runtime.column} {runtime.precision} {reference:.2f} ms' if reference else
                      f'{runtime.column} {runtime.precision} not measured')
    return (found[1] / reference if found and reference else None), f'{_ms(found)} / {reference_text}'


def fastest_end_to_end(entry: Dict, precision: str) -> Optional[Tuple[str, str]]:
    """(runtime, figure) of the fastest end-to-end figure (``END_TO_END_FIGURES``) of ``precision``; None when none
    was measured."""
    candidates = [(runtime, figure) for runtime, figures in entry.get('figures', {}).items()
                  if RUNTIMES[runtime].precision == precision for figure in END_TO_END_FIGURES if figure in figures]
    return min(candidates, key=lambda c: entry['figures'][c[0]][c[1]]) if candidates else None


def _end_to_end_over_network(target: Target, results: Dict) -> Figure:
    """In the runtime with the fastest end-to-end figure: that figure over its own network's."""
    entry = results['models'].get(target.model, {})
    found = fastest_end_to_end(entry, target.precision)
    if not found:
        return None, 'not measured'
    runtime, figure = found
    figures = entry['figures'][runtime]
    if 'detections' not in figures:
        load = ''
    elif figure == 'image_in':
        load = ', score_thr 0: the best 300 (anchor, class) pairs into NMS'
    else:
        load = (f', score_thr 0: {entry["post_processing"]["nms_pre"]} boxes a level into NMS, '
                f'{figures["detections"]} out')
    return figures[figure] / figures['network'], (
        f'{RUNTIMES[runtime].column} (fastest {target.precision} end to end): {FIGURES[figure]} '
        f'{figures[figure]:.2f} ms / its network {figures["network"]:.2f} ms{load}')


def _best_over_litert(target: Target, results: Dict) -> Figure:
    found = taken(results['models'].get(target.model, {}), target)
    reference = (results.get('litert') or {}).get('network')
    litert_text = f'LiteRT on Google\'s file {reference:.2f} ms' if reference else 'LiteRT not measured'
    return (found[1] / reference if found and reference else None), f'{_ms(found)} / {litert_text}'


def _tflite_over_litert(target: Target, results: Dict) -> Figure:
    litert = results.get('litert') or {}
    ours, google = litert.get('ours_network'), litert.get('network')
    if not ours or not google:
        return None, 'not measured'
    return ours / google, (f'our .tflite {ours:.2f} ms / Google\'s file {google:.2f} ms, one interpreter, the two '
                           'called in turn')


def _agreement_with_litert(target: Target, results: Dict) -> Figure:
    found = best(results['models'].get(target.model, {}), target.precision)
    agreement = ((results.get('litert') or {}).get('agreement') or {}).get(found[0]) if found else None
    if not agreement:
        return None, 'not measured'
    return agreement['mean'], (f'{RUNTIMES[found[0]].column}, {len(agreement["per_photo"])} real photos not used '
                               f'for calibration')


def _network_over_floor(target: Target, results: Dict) -> Figure:
    entry = results['models'].get(target.model, {})
    found = best(entry, target.precision)
    if not found:
        return None, 'not measured'
    peak = results['peak']
    return found[1] / entry['floor_ms'], (f'{_ms(found)} / ({entry["flops"] / 1e9:.2f} GFLOP at '
                                          f'{peak["peak_gflops"]:.1f} GFLOP/s = {entry["floor_ms"]:.2f} ms)')


# kind -> (comparison, how the figure is computed)
TARGET_FIGURES: Dict[str, Tuple[str, Callable[[Target, Dict], Figure]]] = {
    'best_over_runtime': ('ratio', _best_over_runtime),
    'end_to_end_over_network': ('ratio', _end_to_end_over_network),
    'best_over_litert': ('ratio', _best_over_litert),
    'tflite_over_litert': ('ratio', _tflite_over_litert),
    'agreement_with_litert': ('fraction', _agreement_with_litert),
    'network_over_floor': ('ratio', _network_over_floor),
}


def evaluate_targets(results: Dict) -> List[Dict]:
    """Each target as a row: figure, target, measured, met (None: not measured), the figures behind it."""
    rows = []
    for target in TARGETS:
        comparison, compute = TARGET_FIGURES[target.kind]
        measured, detail = compute(target, results)
        met = None if measured is None else (measured >= target.limit if target.at_least else
                                             measured <= target.limit)
        rows.append(dict(figure=target.label, target=f'{">=" if target.at_least else "<="} {target.limit:g}',
                         limit=target.limit, at_least=target.at_least, comparison=comparison, measured=measured,
                         met=met, detail=detail))
    return rows
