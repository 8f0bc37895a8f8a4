"""tools/analysis_tools/benchmark.py: every figure for ours and the peer, and an optimisation that changes nothing;
``--suite deploy``: every runtime, the floor against a FLOP count of the exported graph, LiteRT on Google's file and
the label-map agreement on real photos, the targets and the JSON / Markdown / PNG reports.

Timings are not checked (the machine is shared); the runs use the fewest repeats that produce every row.
"""
import copy
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch
from reference_data import require
from torch.nn.modules.batchnorm import _BatchNorm
from toy_runs import REPO

from mmmnv2.analysis.benchmark import ROWS, BenchmarkSettings, build_model, load_config, run_benchmark, time_alternately
from mmmnv2.analysis.deploy_suite import FIGURES, RUNTIMES, evaluate_targets
from mmmnv2.deployment import MOBILE_FORMATS
from mmmnv2.deployment.graph_format import META_POSTPROCESS
from mmmnv2.deployment.sessions import open_session, read_metadata
from mmmnv2.utils import HOSTS, drop_pretrained, optimize_for_inference


def tool_module(name: str):
    """A module of tools/analysis_tools/ (the tool imports it from its own folder)."""
    spec = importlib.util.spec_from_file_location(name, Path(REPO) / 'tools' / 'analysis_tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reports = tool_module('benchmark_reports')
format_figure, markdown_table = reports.format_figure, reports.markdown_table
README_BEGIN, README_END = reports.README_BEGIN, reports.README_END

DETECTION = 'configs/ssdlite/ssdlite_mobilenetv2_8xb24-600e_coco-320x320.py'
SEGMENTATION = 'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-os16_4xb4-30k_voc12aug-512x512.py'
FAST = ['--threads', '1', '--warmup', '0', '--repeats', '2', '--train-warmup', '0', '--train-iters', '1',
        '--batch-size', '2']


def run_tool(config: str, out: Path, *extra: str) -> str:
    result = subprocess.run([sys.executable, 'tools/analysis_tools/benchmark.py', config, *FAST, '--out', str(out),
                             *extra], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def check_figures(stdout: str, results: dict, keys: list) -> None:
    assert [row['key'] for row in results['rows']] == keys
    table = {line.split('|')[1].strip(): [cell.strip() for cell in line.split('|')[2:6]]
             for line in stdout.splitlines() if line.startswith('| ') and not line.startswith('| figure')}
    for row in results['rows']:
        assert row['ours'] > 0 and row['peer'] > 0
        assert row['ratio'] == pytest.approx(row['ours'] / row['peer'], rel=1e-12)
        assert len(row['ours_samples']) == len(row['peer_samples']) > 0
        figure = ROWS[row['key']][0] + (f', batch {results["settings"]["batch_size"]}' if row['key'] == 'train' else '')
        assert table[figure] == [ROWS[row['key']][1], format_figure(row['ours']), format_figure(row['peer']),
                                 f'{row["ratio"]:.2f}']
    machine = results['machine']
    assert machine['cpu'] and machine['threads'] == 1 and machine['torch'] == torch.__version__


def test_detection_benchmark_has_every_figure(tmp_path):
    stdout = run_tool(DETECTION, tmp_path / 'det.json', '--onnx-dir', str(tmp_path))
    results = json.loads((tmp_path / 'det.json').read_text())
    check_figures(stdout, results, list(ROWS))
    assert results['peer']['config'] == HOSTS['mmdet'].benchmark_peer
    assert results['ours']['input_size'] == results['peer']['input_size'] == [320, 320]
    # score_thr 0 for both: NMS gets nms_pre boxes and returns max_per_img, whatever the random weights
    assert set(results['ours']['detections'].values()) == {100}
    assert set(results['peer']['detections'].values()) == {200}
    assert 'JPEG decoding excluded' in stdout


def test_segmentation_benchmark_has_every_pytorch_figure():
    # In this process (the command line and its JSON file are the detection test's): the settings FAST gives the
    # tool, with one repeat (the peer takes seconds a run).
    settings = BenchmarkSettings(threads=1, warmup=0, repeats=1, train_warmup=0, train_iters=1, batch_size=2)
    threads = torch.get_num_threads()
    try:
        results = run_benchmark(SEGMENTATION, settings=settings)
    finally:
        torch.set_num_threads(threads)
    check_figures(markdown_table(results), results, [key for key in ROWS if 'onnxruntime' not in key])
    assert results['peer']['config'] == HOSTS['mmseg'].benchmark_peer
    assert results['ours']['input_size'] == results['peer']['input_size'] == [512, 512]


def flatten(outputs) -> list:
    return [outputs] if torch.is_tensor(outputs) else [t for output in outputs for t in flatten(output)]


@pytest.mark.parametrize('config, size', [(DETECTION, 320), (HOSTS['mmdet'].benchmark_peer, 320),
                                          (SEGMENTATION, 128), (HOSTS['mmseg'].benchmark_peer, 128)])
def test_optimized_model_computes_what_the_plain_one_does(config, size, randomise_bn):
    cfg = load_config(config)
    drop_pretrained(cfg.model)
    plain = build_model(cfg)
    randomise_bn(plain)
    optimized = optimize_for_inference(copy.deepcopy(plain))
    assert not [m for m in optimized.modules() if isinstance(m, _BatchNorm)]  # every batch norm was folded
    inputs = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = flatten(plain(inputs, mode='tensor'))
    with torch.inference_mode():
        actual = flatten(optimized(inputs, mode='tensor'))
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        assert got.shape == want.shape
        # float32 rounding only: within 1e-4 of the output's largest magnitude
        assert (got - want).abs().max() <= 1e-4 * want.abs().max()


def test_peer_of_the_other_task_is_refused():
    with pytest.raises(ValueError, match='segmentation config .* compare models of the same task'):
        run_benchmark(DETECTION, HOSTS['mmseg'].benchmark_peer)


def test_config_of_an_unknown_task_is_refused(tmp_path):
    config = tmp_path / 'classifier.py'
    config.write_text("default_scope = 'mmpretrain'\nmodel = dict(type='ImageClassifier')\n")
    with pytest.raises(ValueError, match='default_scope'):
        run_benchmark(str(config))


# ---------------------------------------------------------------------------------------------------------------
# --suite deploy: every runtime, the floor, LiteRT on Google's file (one tiny run of the command line)

DEPLOY_FAST = ['--threads', '1', '--warmup', '0', '--repeats', '1', '--min-repeats', '1', '--gemm-size', '512',
               '--calibration-photos', '2', '--agreement-photos', '2']


def onnx_conv_macs(onnx_file: str) -> int:
    """Multiply-adds of the ONNX graph's convolutions and matrix products, from its inferred shapes: an independent
    count of what ``count_macs`` counts on the PyTorch model (BN is folded into the convolutions in the file)."""
    import onnx
    model = onnx.shape_inference.infer_shapes(onnx.load(onnx_file))
    shapes = {value.name: [d.dim_value for d in value.type.tensor_type.shape.dim]
              for value in (*model.graph.value_info, *model.graph.output, *model.graph.input)}
    shapes.update({init.name: list(init.dims) for init in model.graph.initializer})
    total = 0
    for node in model.graph.node:
        if node.op_type == 'Conv':
            weight = shapes[node.input[1]]  # (out, in / groups, kh, kw)
            total += int(np.prod(shapes[node.output[0]])) * weight[1] * weight[2] * weight[3]
        elif node.op_type in ('MatMul', 'Gemm'):
            total += int(np.prod(shapes[node.output[0]])) * shapes[node.input[0]][-1]
    return total


def markdown_cells(markdown: str) -> dict:
    """(model, figure) -> {column: cell} of the first table."""
    lines = [line for line in markdown.splitlines() if line.startswith('| ')]
    header = [cell.strip() for cell in lines[0].split('|')[1:-1]]
    cells = {}
    for line in lines[1:]:
        row = [cell.strip() for cell in line.split('|')[1:-1]]
        if row[0] == 'target':
            break
        cells[tuple(row[:2])] = dict(zip(header[2:], row[2:]))
    return cells


def test_deploy_suite_measures_every_runtime_and_writes_its_reports(tmp_path, shared_data):
    data_root = shared_data
    out_dir = tmp_path / 'deploy'
    result = subprocess.run([sys.executable, 'tools/analysis_tools/benchmark.py', '--suite', 'deploy', '--out-dir',
                             str(out_dir), '--models', 'google_dm05', '--data-root', str(data_root), *DEPLOY_FAST],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out_dir / 'deploy_benchmark.json').read_text())
    markdown = (out_dir / 'deploy_benchmark.md').read_text()
    assert markdown.strip() in result.stdout
    entry = results['models']['google_dm05']
    assert set(entry['figures']) == set(RUNTIMES), entry['unavailable']
    assert entry['input_size'] == [257, 257]
    assert entry['end_to_end_postprocessing'] == 'in the ONNX graph'  # fp32 and int8 networks, add_postprocess
    # the .tflite / .pte networks, fp32 and int8, each written once and run by its runtime (LiteRT, ExecuTorch)
    for runtime in RUNTIMES.values():
        if runtime.file_format in MOBILE_FORMATS:
            suffix = '' if runtime.precision == 'fp32' else '_int8'
            assert (out_dir / f'google_dm05{suffix}{MOBILE_FORMATS[runtime.file_format]}').is_file()

    # every figure the median of its samples, and printed as such; image in, result out for the fp32 files, each
    # taking the end-to-end figure's image size (1, H, W, 3) uint8
    cells = markdown_cells(markdown)
    assert 'image_in_unavailable' not in entry
    for runtime, figures in entry['figures'].items():
        image_in = RUNTIMES[runtime].precision == 'fp32' and RUNTIMES[runtime].backend is not None
        assert ('image_in' in figures) == image_in, runtime
        for figure, label in FIGURES.items():
            cell = cells[(entry['name'], label)][RUNTIMES[runtime].column]
            if figure not in figures:
                assert cell == '-'
                continue
            assert figures[figure] == statistics.median(figures[f'{figure}_samples']) > 0
            assert cell == format_figure(figures[figure])
        if image_in:
            session = open_session(figures['image_in_file'], RUNTIMES[runtime].backend, 1)
            assert session.input_shape == [1, *entry['image_size'], 3]
            assert read_metadata(figures['image_in_file'])[META_POSTPROCESS]
    litert = results['litert']
    assert litert['network'] == statistics.median(litert['network_samples']) > 0
    # our .tflite, timed in turn with Google's file: as many calls of each
    assert litert['ours_file'] == str(out_dir / 'google_dm05.tflite')
    assert litert['ours_network'] == statistics.median(litert['ours_network_samples']) > 0
    assert len(litert['ours_network_samples']) == len(litert['network_samples'])
    assert cells[(entry['name'], 'network')]['LiteRT (Google\'s file)'] == format_figure(litert['network'])

    # the floor: FLOPs = 2 x the multiply-adds of the exported graph's convolutions, over the higher peak
    peak = results['peak']
    assert peak['peak_gflops'] == max(peak['gemm_gflops'], peak['conv_gflops']) > 0
    assert entry['macs'] == onnx_conv_macs(entry['onnx_file'])
    assert entry['flops'] == 2 * entry['macs']
    assert entry['floor_ms'] == pytest.approx(entry['flops'] / (peak['peak_gflops'] * 1e9) * 1e3, rel=1e-12)
    assert cells[(entry['name'], 'network')]['floor'] == format_figure(entry['floor_ms'])

    # label maps against LiteRT's float output on real photos not used for calibration
    assert set(results['photos']['calibration']).isdisjoint(results['photos']['agreement'])
    assert len(results['photos']['agreement']) == 2 and len(results['photos']['calibration']) == 2
    assert 'pytorch' not in litert['agreement']  # its float parity with LiteRT is tested on its own
    for runtime in [r for r in RUNTIMES if r != 'pytorch']:
        per_photo = litert['agreement'][runtime]['per_photo']
        assert list(per_photo) == results['photos']['agreement']
        if RUNTIMES[runtime].precision == 'fp32':  # the converted float model is LiteRT's to float rounding
            assert min(per_photo.values()) >= 0.999, runtime

    # the targets, recomputed here from the figures
    rows = {row['figure']: row for row in results['targets']}
    fp32 = min(f['network'] for r, f in entry['figures'].items() if RUNTIMES[r].precision == 'fp32')
    int8_runtime = min((r for r in entry['figures'] if RUNTIMES[r].precision == 'int8'),
                       key=lambda r: entry['figures'][r]['network'])
    # end to end: the runtime whose end-to-end figure (through the pipeline, or image in, result out) is fastest,
    # over its own network
    end_to_end = {(r, f): figures[f] / figures['network'] for r, figures in entry['figures'].items()
                  if RUNTIMES[r].precision == 'fp32' for f in ('end_to_end', 'image_in') if f in figures}
    fastest = min(end_to_end, key=lambda key: entry['figures'][key[0]][key[1]])
    expected = {
        'Google DM0.5 converted, network: our best fp32 / LiteRT on Google\'s file': (fp32 / litert['network'], 0.85),
        'Google DM0.5 Mobile DeepLabv3 257: end-to-end / network': (end_to_end[fastest], 1.2),
        'Google DM0.5 converted, network: our best int8 / LiteRT on Google\'s file':
            (entry['figures'][int8_runtime]['network'] / litert['network'], 0.4),
        'Google DM0.5 fp32 network / machine floor': (fp32 / entry['floor_ms'], 1.5),
        'Google DM0.5 converted, network: our .tflite / Google\'s file, both in LiteRT':
            (litert['ours_network'] / litert['network'], 1.05),
    }
    for figure, (measured, limit) in expected.items():
        assert rows[figure]['measured'] == pytest.approx(measured, rel=1e-12)
        assert rows[figure]['met'] == (measured <= limit)
    agreement = rows['Google DM0.5 int8 (best int8 runtime) label maps = LiteRT float argmax, pixels']
    assert agreement['measured'] == pytest.approx(np.mean(list(litert['agreement'][int8_runtime]['per_photo']
                                                               .values())))
    assert agreement['met'] == (agreement['measured'] >= 0.97)
    for row in results['targets']:
        if row['figure'].startswith('SSDLite'):
            assert row['met'] is None and row['measured'] is None  # not in this run
    table = [line for line in markdown.splitlines() if line.startswith('| ')]
    for row in results['targets']:
        line = next(line for line in table if line.startswith(f'| {row["figure"]} |'))
        assert {True: '| met |', False: '| missed |', None: '| not measured |'}[row['met']] in line

    png = matplotlib.image.imread(out_dir / 'deploy_benchmark.png')
    assert png.ndim == 3 and png.shape[0] > 200 and png.shape[1] > 800

    # the README's table comes back from the JSON file alone, into the README's block
    readme = tmp_path / 'README.md'
    readme.write_text(f'# Title\n\nbefore\n{README_BEGIN}\nold table\n{README_END}\nafter\n')
    again = subprocess.run([sys.executable, 'tools/analysis_tools/benchmark.py', '--from-json',
                            str(out_dir / 'deploy_benchmark.json'), '--readme', str(readme)],
                           cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.strip() == markdown.strip()
    assert readme.read_text() == f'# Title\n\nbefore\n{README_BEGIN}\n{markdown.strip()}\n{README_END}\nafter\n'


def test_alternate_timing_calls_each_function_in_turn_and_times_each():
    calls = []

    def fast():
        calls.append('fast')

    def slow():
        calls.append('slow')
        time.sleep(0.005)

    fast_ms, slow_ms = time_alternately([fast, slow], warmup=1, repeats=3)
    # one warm-up round, then the rounds in turn, every other one reversed (neither always runs after the other)
    assert calls == ['fast', 'slow', 'fast', 'slow', 'slow', 'fast', 'fast', 'slow']
    assert len(fast_ms) == len(slow_ms) == 3 and min(slow_ms) >= 5 > min(fast_ms)  # each call timed on its own
    # the time budget is per function: 2 rounds (min_repeats) take 10 ms, past 2 x 2 ms
    fast_ms, slow_ms = time_alternately([fast, slow], warmup=0, repeats=10, max_seconds=0.002, min_repeats=2)
    assert len(fast_ms) == len(slow_ms) == 2


def test_targets_on_one_runtime_take_its_figure_not_the_fastest():
    # SSDLite's figures (the deploy run above measures Google's model only): each runtime a different latency, the
    # LiteRT and ExecuTorch ones slower than the fastest of their precision, so taking the fastest would show
    figures = {runtime: dict(network=10.0 + i, end_to_end=20.0 + i) for i, runtime in enumerate(RUNTIMES)}
    results = dict(models=dict(ssdlite=dict(figures=figures, flops=1e9, floor_ms=1.0)), litert=None,
                   peak=dict(peak_gflops=1000.0))
    rows = {row['figure']: row for row in evaluate_targets(results)}
    expected = {
        'SSDLite network: LiteRT int8 / LiteRT fp32': (figures['litert_int8']['network'] /
                                                       figures['litert']['network'], 0.5),
        'SSDLite network: ExecuTorch fp32 / ONNX Runtime fp32': (figures['executorch']['network'] /
                                                                 figures['onnxruntime']['network'], 1.0),
        'SSDLite network: best int8 runtime / ONNX Runtime fp32': (figures['onnxruntime_int8']['network'] /
                                                                   figures['onnxruntime']['network'], 0.3),
    }
    for figure, (measured, limit) in expected.items():
        assert rows[figure]['measured'] == pytest.approx(measured, rel=1e-12)
        assert rows[figure]['met'] == (measured <= limit)
    assert 'LiteRT int8 ' in rows['SSDLite network: LiteRT int8 / LiteRT fp32']['detail']
    del figures['executorch']  # not measured (not installed, or the converter refused the model): no figure
    row = next(row for row in evaluate_targets(results) if row['figure'].startswith('SSDLite network: ExecuTorch'))
    assert row['measured'] is None and row['met'] is None


class ConstantSegmentor:
    """Predicts class 0 everywhere: its agreement with LiteRT is the share of LiteRT's background pixels."""

    def test_step(self, data: dict) -> list:
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        height, width = data['inputs'][0].shape[1:]
        return [SegDataSample(pred_sem_seg=PixelData(data=torch.zeros(1, height, width, dtype=torch.int64)))]


def test_label_agreement_counts_the_pixels_litert_labels_alike(shared_data):
    data_root = shared_data
    require('ai_edge_litert')
    from mmmnv2.analysis.deploy_benchmark import CORAL_PHOTOS
    from mmmnv2.analysis.litert_reference import LiteRTModel, label_agreement, square_rgb
    tflite_file = str(data_root / 'tflite' / 'deeplabv3_257_mv_gpu.tflite')
    photos = [str(data_root / 'images' / name) for name in CORAL_PHOTOS[:2]]
    agreement = label_agreement(ConstantSegmentor(), lambda data: dict(inputs=torch.from_numpy(
        data['img'].transpose(2, 0, 1).copy()), data_samples=None), LiteRTModel(tflite_file, 1), photos)
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=tflite_file, num_threads=1)
    interpreter.allocate_tensors()
    for path in photos:
        image = square_rgb(path, 257)
        interpreter.set_tensor(interpreter.get_input_details()[0]['index'],
                               (image.astype(np.float32)[None] - 127.5) / 127.5)
        interpreter.invoke()
        labels = interpreter.get_tensor(interpreter.get_output_details()[0]['index'])[0].argmax(-1)
        background = float((labels == 0).mean())
        assert 0.05 < background < 0.999  # the photos show objects on a background
        assert agreement[Path(path).name] == pytest.approx(background, abs=1e-12)
