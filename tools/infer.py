"""Run a detection or segmentation model on images: annotated pictures and JSON results.

    python tools/infer.py CONFIG MODEL INPUTS... [--out-dir outputs] [--device cpu] [--score-thr 0.3]
                                                 [--batch-size 1]

CONFIG is a config of ``configs/`` (the host follows from its ``default_scope``), MODEL a checkpoint (``.pth``) or
an exported ONNX file (``.onnx``, run in onnxruntime), INPUTS image files and/or folders of images. Written into
the output folder, as MMDetection's ``DetInferencer`` lays it out:

- ``vis/<image>``: the image with the predictions drawn (boxes above ``--score-thr`` with class names and scores,
  or the label map overlaid);
- ``preds/<name>.json``: detection: every kept box in the image's pixels (x1, y1, x2, y2), class ids and names,
  scores; segmentation: pixels per class and the path of ``preds/<name>.png``, the label map of class ids.

Checkpoints holding anything else than weights and MMEngine's training state are refused, not unpickled.
"""
import argparse
import os.path as osp
import time
from collections import Counter
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

from mmengine.config import Config
from mmengine.utils import ProgressBar

from mmmnv2.apis import check_model_file, find_images, inference, init_model, save_results


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Detect objects or segment images with a config of configs/')
    parser.add_argument('config', help='config file (default_scope mmdet or mmseg)')
    parser.add_argument('model', help='checkpoint (.pth) or exported ONNX file (.onnx)')
    parser.add_argument('inputs', nargs='+', help='image files and/or folders of images')
    parser.add_argument('--out-dir', default='outputs', help='folder for the pictures (vis/) and results (preds/)')
    parser.add_argument('--device', help='device for checkpoints, e.g. cpu or cuda:0 (default: GPU if available)')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detection: lowest score of the boxes drawn')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='images per forward pass (segmentation: images of one batch must have the same size)')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f'--batch-size must be at least 1, got {args.batch_size}')
    try:
        check_model_file(args.model)
        args.images = find_images(args.inputs)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    return args


def with_progress(results: Iterable[Tuple], total: int) -> Iterator[Tuple]:
    """Pass ``results`` through, advancing a progress bar (MMEngine's, as the hosts' inferencers) per image."""
    bar = ProgressBar(total)
    for result in results:
        yield result
        bar.update()
    print()


def summary(records: List[Dict], seconds: float, score_thr: float) -> str:
    """What was found over all images: detections above ``score_thr`` per class, or each class's share of pixels."""
    if records and 'scores' in records[0]:
        found = Counter(name for r in records for name, s in zip(r['label_names'], r['scores']) if s >= score_thr)
        what = f'detections with score >= {score_thr:g}: ' + (
            ', '.join(f'{name} {n}' for name, n in sorted(found.items())) or 'none')
    else:
        pixels = Counter()
        for r in records:
            pixels.update(r['pixel_counts'])
        total = sum(pixels.values()) or 1
        what = 'pixels per class: ' + ', '.join(f'{name} {100 * n / total:.1f}%' for name, n in pixels.items())
    return f'{len(records)} images in {seconds:.1f} s ({1000 * seconds / max(len(records), 1):.0f} ms each); {what}'


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    model = init_model(Config.fromfile(args.config), args.model, args.device)
    start = time.perf_counter()
    results = with_progress(inference(model, args.images, args.batch_size), len(args.images))
    records = save_results(model, results, args.out_dir, args.score_thr)
    print(summary(records, time.perf_counter() - start, args.score_thr))
    print(f'pictures in {osp.join(args.out_dir, "vis")}, results in {osp.join(args.out_dir, "preds")}')


if __name__ == '__main__':
    main()
