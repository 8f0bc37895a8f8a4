"""Latency and training speed of a config's model beside its closest MMDetection / MMSegmentation peer; or, with
``--suite deploy``, every deployment runtime on every model in one run.

    python tools/analysis_tools/benchmark.py CONFIG [--peer PEER_CONFIG] [--threads 2] [--warmup 5] [--repeats 20]
        [--train-warmup 2] [--train-iters 10] [--batch-size B] [--image-size H W] [--score-thr 0.0|config]
        [--no-optimize] [--no-fuse-conv-bn] [--no-channels-last] [--onnx-dir DIR] [--out results.json]

    python tools/analysis_tools/benchmark.py configs/ssdlite/ssdlite_mobilenetv2_8xb24-600e_coco-320x320.py
    python tools/analysis_tools/benchmark.py --onnx-dir work_dirs/onnx \\
        configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-os16_4xb4-30k_voc12aug-512x512.py

Default peers: MMDetection's ``ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py`` (detection) and
MMSegmentation's ``mobilenet_v2/mobilenet-v2-d8_deeplabv3_4xb4-160k_ade20k-512x512.py`` (segmentation); any
``mmdet::...`` / ``mmseg::...`` config or config file of the same task can be given instead. Both models get random
weights and are measured in this process, on this machine, figure by figure (see ``mmmnv2/analysis/benchmark.py`` for
what each figure covers). Prints a Markdown table: ours, the peer and ours/peer for each figure.

    python tools/analysis_tools/benchmark.py --suite deploy --out-dir work_dirs/deploy_benchmark [--threads 2]
        [--warmup 2] [--repeats 10] [--max-seconds 1.5] [--min-repeats 3] [--models KEY ...] [--runtimes KEY ...]
        [--no-peers] [--data-root ../shared/data] [--calibration-photos 32] [--speed-calibration-photos 4]
        [--agreement-photos N] [--gemm-size 1536] [--readme README.md]
    python tools/analysis_tools/benchmark.py --from-json docs/speed/deploy_benchmark.json [--readme README.md]

The deploy suite (``mmmnv2/analysis/deploy_benchmark.py``; what it measures: ``deploy_suite.py``) measures, batch 1, the
same threads throughout: PyTorch eager, ONNX Runtime and OpenVINO (ONNX file), LiteRT (.tflite) and ExecuTorch (.pte),
in fp32 and int8, network-only and end-to-end, for our SSDLite and Mobile DeepLabv3, the hosts' peers and Google's float
DM 0.5 Mobile DeepLabv3 converted into ours; LiteRT on Google's own file (from ``--data-root``, by default
``../shared/data`` beside the checkout, with the real photos the int8 models are calibrated and their label maps checked
on); the machine's floor (FLOPs over a GEMM / conv peak measured in the run). It writes ``deploy_benchmark.json``,
``.md`` (the README's table) and ``.png`` (a bar chart) into ``--out-dir`` and prints the Markdown; ``--from-json``
prints the Markdown of an earlier run again (and, with ``--out-dir``, writes its ``.md`` and ``.png`` there);
``--readme`` puts the Markdown into the README between its deploy benchmark markers. The reports are written by
``benchmark_reports.py``. Refusals print one line ``error: <file>: <reason>`` and exit with status 1 (``--debug``: the
traceback).
"""
import argparse
import json
import os.path as osp
from typing import Optional

from benchmark_reports import markdown_report, markdown_table, replace_readme_table, write_reports

from mmmnv2.analysis import BenchmarkSettings, DeploySettings, run_benchmark, run_deploy_benchmark
from mmmnv2.analysis.deploy_suite import BENCHMARKED_MODELS, PEERS, RUNTIMES, evaluate_targets
from mmmnv2.utils import add_debug_argument, one_line_errors, replace_when_written

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Google's released files and the real photos, where a checkout keeps them: beside it, in shared/data
DEFAULT_DATA_ROOT = osp.join(osp.dirname(REPO), 'shared', 'data')


def score_threshold(value: str) -> Optional[float]:
    return None if value == 'config' else float(value)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?', help='our config file (the peer comparison)')
    parser.add_argument('--suite', choices=('peer', 'deploy'), default='peer',
                        help='peer: CONFIG beside its peer (default); deploy: every runtime on every model')
    parser.add_argument('--peer', help='the config to compare with (default: the host\'s closest model)')
    parser.add_argument('--threads', type=int, default=2, help='torch (and ONNX Runtime) threads')
    parser.add_argument('--warmup', type=int, help='untimed runs before each latency (default: peer 5, deploy 2)')
    parser.add_argument('--repeats', type=int, help='timed runs per latency, the median is reported (default: peer 20, '
                                                    'deploy 10)')
    parser.add_argument('--train-warmup', type=int, default=2, help='untimed training iterations')
    parser.add_argument('--train-iters', type=int, default=10, help='timed training iterations (0: no training)')
    parser.add_argument('--batch-size', type=int, help='training batch (default: detection 8, segmentation 4)')
    parser.add_argument('--image-size', type=int, nargs=2, metavar=('H', 'W'),
                        help='decoded image of the end-to-end figures (default: detection 480x640, a typical COCO '
                             'image; segmentation: the config\'s input size)')
    parser.add_argument('--score-thr', type=score_threshold, default=0.0,
                        help='detection score threshold of both models (default 0.0: NMS always gets nms_pre '
                             'boxes, as random weights pass no real threshold); "config": each config\'s own')
    parser.add_argument('--no-optimize', dest='optimize', action='store_false',
                        help='skip the optimised rows (conv-BN fusion, channels_last, inference_mode)')
    parser.add_argument('--no-fuse-conv-bn', dest='fuse_conv_bn', action='store_false',
                        help='optimised rows without conv-BN fusion')
    parser.add_argument('--no-channels-last', dest='channels_last', action='store_false',
                        help='optimised rows without the channels_last layout')
    parser.add_argument('--onnx-dir', help='export both models (random weights) to ONNX here and add ONNX Runtime '
                                           'rows')
    parser.add_argument('--out', help='write every figure, sample and setting to this JSON file')
    deploy = parser.add_argument_group('deploy suite')
    deploy.add_argument('--out-dir', help='where the ONNX / int8 files and deploy_benchmark.{json,md,png} go')
    deploy.add_argument('--max-seconds', type=float, default=DeploySettings.max_seconds,
                        help='no further repeats of a figure once its timed runs took this long')
    deploy.add_argument('--min-repeats', type=int, default=3, help='timed runs per figure at least')
    deploy.add_argument('--models', nargs='+', choices=list(BENCHMARKED_MODELS),
                        default=list(BENCHMARKED_MODELS), help='models to measure')
    deploy.add_argument('--no-peers', action='store_true', help='leave the hosts\' peers out')
    deploy.add_argument('--runtimes', nargs='+', choices=list(RUNTIMES), default=list(RUNTIMES),
                        help='runtimes to measure')
    deploy.add_argument('--data-root', default=DEFAULT_DATA_ROOT,
                        help='Google\'s tflite/deeplabv3_257_mv_gpu.tflite and the real photos (images/, '
                             'coco_mini_val2017/); without them no LiteRT rows and int8 calibrates on random images')
    deploy.add_argument('--calibration-photos', type=int, default=32,
                        help='int8 calibration: the first N COCO photos; the other photos check the label maps')
    deploy.add_argument('--speed-calibration-photos', type=int, default=DeploySettings.speed_calibration_photos,
                        help='int8 calibration photos of the models with random weights (timed only)')
    deploy.add_argument('--gemm-size', type=int, default=DeploySettings.gemm_size,
                        help='the GEMM of the compute peak is N x N x N')
    deploy.add_argument('--agreement-photos', type=int, help='at most this many photos for the label-map agreement')
    deploy.add_argument('--readme', help='also put the Markdown into this README between its deploy benchmark '
                                         'markers')
    deploy.add_argument('--from-json', help='print the Markdown of an earlier deploy run\'s JSON file (and with '
                                            '--out-dir write its .md and .png there)')
    add_debug_argument(parser)
    args = parser.parse_args()
    if args.suite == 'peer' and not args.config and not args.from_json:
        parser.error('CONFIG is required (or --suite deploy, or --from-json)')
    if args.suite == 'deploy' and not args.out_dir:
        parser.error('--suite deploy needs --out-dir')
    return args


def deploy(args: argparse.Namespace) -> None:
    if args.from_json:
        with open(args.from_json) as f:
            results = json.load(f)
        results['targets'] = evaluate_targets(results)  # from the figures, as this version defines the targets
        if args.out_dir:
            write_reports(results, args.out_dir)
        print(markdown_report(results))
        if args.readme:
            replace_readme_table(args.readme, markdown_report(results))
        return
    models = [key for key in args.models if not (args.no_peers and key in PEERS)]
    settings = DeploySettings(
        out_dir=args.out_dir, threads=args.threads,
        warmup=DeploySettings.warmup if args.warmup is None else args.warmup,
        repeats=DeploySettings.repeats if args.repeats is None else args.repeats, max_seconds=args.max_seconds,
        min_repeats=args.min_repeats, models=models,
        runtimes=args.runtimes, data_root=args.data_root, calibration_photos=args.calibration_photos,
        speed_calibration_photos=args.speed_calibration_photos, agreement_photos=args.agreement_photos,
        gemm_size=args.gemm_size)
    results = run_deploy_benchmark(settings)
    files = write_reports(results, args.out_dir)
    print(markdown_report(results))
    if args.readme:
        replace_readme_table(args.readme, markdown_report(results))
    print('\nwritten: ' + ', '.join(files.values()))


def main() -> None:
    args = parse_args()
    with one_line_errors(args.debug):
        benchmark(args)


def benchmark(args: argparse.Namespace) -> None:
    if args.suite == 'deploy' or args.from_json:
        deploy(args)
        return
    settings = BenchmarkSettings(
        threads=args.threads, warmup=5 if args.warmup is None else args.warmup,
        repeats=20 if args.repeats is None else args.repeats,
        train_warmup=args.train_warmup, train_iters=args.train_iters, batch_size=args.batch_size,
        image_size=tuple(args.image_size) if args.image_size else None, score_thr=args.score_thr,
        optimize=args.optimize, fuse_conv_bn=args.fuse_conv_bn, channels_last=args.channels_last,
        onnx_dir=args.onnx_dir)
    results = run_benchmark(args.config, args.peer, settings)
    print(markdown_table(results))
    if args.out:
        with replace_when_written(args.out) as temporary, open(temporary, 'w') as f:
            json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()
