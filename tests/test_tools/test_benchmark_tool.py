"""tools/analysis_tools/benchmark.py: every figure for ours and the peer, and an optimisation that changes nothing.

Timings are not checked (the machine is shared); the runs use the fewest repeats that produce every row.
"""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm
from toy_runs import REPO

from mmmnv2.analysis.benchmark import (
    ROWS,
    BenchmarkSettings,
    build_model,
    format_figure,
    load_config,
    markdown_table,
    run_benchmark,
)
from mmmnv2.utils import HOSTS, drop_pretrained, optimize_for_inference

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
