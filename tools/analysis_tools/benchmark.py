"""Latency and training speed of a config's model beside its closest MMDetection / MMSegmentation peer.

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
"""
import argparse
import json
from typing import Optional

from mmmnv2.analysis import BenchmarkSettings, markdown_table, run_benchmark


def score_threshold(value: str) -> Optional[float]:
    return None if value == 'config' else float(value)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='our config file')
    parser.add_argument('--peer', help='the config to compare with (default: the host\'s closest model)')
    parser.add_argument('--threads', type=int, default=2, help='torch (and ONNX Runtime) threads')
    parser.add_argument('--warmup', type=int, default=5, help='untimed runs before each latency')
    parser.add_argument('--repeats', type=int, default=20, help='timed runs per latency (the median is reported)')
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
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    settings = BenchmarkSettings(
        threads=args.threads, warmup=args.warmup, repeats=args.repeats, train_warmup=args.train_warmup,
        train_iters=args.train_iters, batch_size=args.batch_size,
        image_size=tuple(args.image_size) if args.image_size else None, score_thr=args.score_thr,
        optimize=args.optimize, fuse_conv_bn=args.fuse_conv_bn, channels_last=args.channels_last,
        onnx_dir=args.onnx_dir)
    results = run_benchmark(args.config, args.peer, settings)
    print(markdown_table(results))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)


if __name__ == '__main__':
    main()
