"""Run a detection or segmentation model on images: annotated pictures and JSON results.

    python tools/infer.py CONFIG MODEL INPUTS... [--out-dir outputs] [--overwrite] [--device cpu]
                                                 [--backend {onnxruntime,openvino,litert,executorch}]
                                                 [--score-thr 0.3] [--batch-size 1] [--max-pixels 1e8] [--debug]

CONFIG is a config of ``configs/`` (the host follows from its ``default_scope``), MODEL a checkpoint (``.pth``) or
an exported file (``.onnx``, fp32 or int8, run in onnxruntime or OpenVINO: ``--backend``; ``.tflite`` run in LiteRT;
``.pte`` run in ExecuTorch), INPUTS image files and/or folders of images. Written into the output folder, as
MMDetection's ``DetInferencer`` lays it out:

- ``vis/<image>``: the image with the predictions drawn (boxes above ``--score-thr`` with class names and scores,
  or the label map overlaid);
- ``preds/<name>.json``: detection: every kept box in the image's pixels (x1, y1, x2, y2), class ids and names,
  scores; segmentation: pixels per class and the path of ``preds/<name>.png``, the label map of class ids.

- ``manifest.json``: the config, the model file and its SHA-256, the start and end time (UTC), and per image its
  status ("ok" with the files written, or "error" with the reason).

Nothing is written over an input: a run whose outputs would replace one of its inputs (images, config, model file;
also through links) is refused. Every file is written to a temporary file and renamed into place, so a link at an
output's path is replaced, never written through, and a failed write leaves no truncated file. An output folder that
is not empty is refused unless ``--overwrite`` (results of two runs would otherwise mix unrecorded). An image that
cannot be decoded, whose header declares more than ``--max-pixels`` pixels (default 100 MP; refused before it is
decoded), or whose results cannot be written (full disk, no permission) is skipped with its error in the manifest;
the run goes on, prints a summary and exits with status 1. Checkpoints holding anything else than weights and
MMEngine's training state are refused, not unpickled. Refusals print one line ``error: <file>: <reason>`` and exit
with status 1 (``--debug``: the traceback). Memory stays flat over any number of images: only counts are kept for
the summary.
"""
import argparse
import datetime
import os
import os.path as osp
import sys
import time
from collections import Counter
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import mmengine
from mmengine.config import Config
from mmengine.utils import ProgressBar

import mmmnv2
from mmmnv2.apis import MAX_PIXELS, check_model_file, find_images, inference, init_model, output_files, save_result
from mmmnv2.deployment import BACKENDS, EXPORTED_EXTENSIONS, file_backend
from mmmnv2.utils import (
    add_debug_argument,
    error_line,
    file_sha256,
    one_line_errors,
    refuse_overwriting_inputs,
    replace_when_written,
)

MANIFEST = 'manifest.json'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Detect objects or segment images with a config of configs/')
    parser.add_argument('config', help='config file (default_scope mmdet or mmseg)')
    parser.add_argument('model', help='checkpoint (.pth) or exported file (.onnx, .tflite, .pte)')
    parser.add_argument('inputs', nargs='+', help='image files and/or folders of images')
    parser.add_argument('--out-dir', default='outputs', help='folder for the pictures (vis/) and results (preds/)')
    parser.add_argument('--overwrite', action='store_true',
                        help='write into an output folder that is not empty (same-named results are replaced)')
    parser.add_argument('--device', help='device for checkpoints, e.g. cpu or cuda:0 (default: GPU if available)')
    parser.add_argument('--backend', choices=BACKENDS,
                        help='runtime of an exported MODEL (default: onnxruntime for .onnx, litert for .tflite, '
                             'executorch for .pte)')
    parser.add_argument('--score-thr', type=float, default=0.3, help='detection: lowest score of the boxes drawn')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='images per forward pass (segmentation: images of one batch must have the same size)')
    parser.add_argument('--max-pixels', type=float, default=MAX_PIXELS,
                        help=f'images whose header declares more pixels are skipped before decoding (default '
                             f'{MAX_PIXELS:.0e})')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f'--batch-size must be at least 1, got {args.batch_size}')
    try:
        check_model_file(args.model)
        if args.model.lower().endswith(EXPORTED_EXTENSIONS):
            args.backend = file_backend(args.model, args.backend)
        elif args.backend is not None:
            raise ValueError(f'--backend runs an exported MODEL ({", ".join(EXPORTED_EXTENSIONS)}), got {args.model}')
        args.images = find_images(args.inputs)
        check_out_dir(args.out_dir, args.overwrite)
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


class Summary:
    """What was found over all images, kept as counts only (memory stays flat over any number of images):
    detections above ``score_thr`` per class, or each class's share of pixels."""

    def __init__(self, score_thr: float) -> None:
        self.score_thr = score_thr
        self.images = 0
        self.detections: Optional[Counter] = None
        self.pixels: Counter = Counter()

    def add(self, record: Dict) -> None:
        self.images += 1
        if 'scores' in record:
            self.detections = self.detections or Counter()
            self.detections.update(name for name, score in zip(record['label_names'], record['scores'])
                                   if score >= self.score_thr)
        else:
            self.pixels.update(record['pixel_counts'])

    def line(self, seconds: float) -> str:
        if self.detections is not None:
            what = f'detections with score >= {self.score_thr:g}: ' + (
                ', '.join(f'{name} {n}' for name, n in sorted(self.detections.items())) or 'none')
        else:
            total = sum(self.pixels.values()) or 1
            what = 'pixels per class: ' + ', '.join(f'{name} {100 * n / total:.1f}%' for name, n in self.pixels.items())
        return (f'{self.images} images in {seconds:.1f} s ({1000 * seconds / max(self.images, 1):.0f} ms each); '
                f'{what}')


def check_out_dir(out_dir: str, overwrite: bool) -> None:
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise ValueError(f'--out-dir {out_dir} is a file, not a folder')
    if osp.isdir(out_dir) and os.listdir(out_dir) and not overwrite:
        raise ValueError(f'--out-dir {out_dir} is not empty; choose another folder, or pass --overwrite to write '
                         f'into it (same-named results are replaced)')
    for sub_dir in ('vis', 'preds'):  # results go into these folders, never through a link to another one
        if osp.islink(osp.join(out_dir, sub_dir)):
            raise ValueError(f'{osp.join(out_dir, sub_dir)} is a symbolic link; results are not written through '
                             f'links: remove it or choose another --out-dir')


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    with one_line_errors(args.debug):
        infer(args)


def infer(args: argparse.Namespace) -> None:
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')
    cfg = Config.fromfile(args.config)
    outputs = {image: output_files(cfg, image, args.out_dir) for image in args.images}
    manifest_file = osp.join(args.out_dir, MANIFEST)
    # e.g. inputs inside <out-dir>/vis, or a link there to an input
    refuse_overwriting_inputs([manifest_file, *(path for files in outputs.values() for path in files)],
                              [args.config, args.model, *args.images], 'result')
    model = init_model(cfg, args.model, args.device, args.backend)
    errors: Dict[str, str] = {}

    def skip(image: str, error: Exception) -> None:
        errors[image] = str(error)
        print(f'skipped {error}', file=sys.stderr)

    start = time.perf_counter()
    found = Summary(args.score_thr)
    results = inference(model, args.images, args.batch_size, on_error=skip, max_pixels=args.max_pixels)
    for image, sample in with_progress(results, len(args.images)):
        try:
            found.add(save_result(model, image, sample, args.out_dir, args.score_thr))
        except OSError as error:  # full disk, no permission: recorded, and the run goes on
            skip(image, OSError(f'{image}: its results could not be written ({error_line(error)})'))
    print(found.line(time.perf_counter() - start))
    manifest = dict(
        config=osp.abspath(args.config), model=osp.abspath(args.model), model_sha256=file_sha256(args.model),
        backend=args.backend or 'pytorch',
        mmmnv2_version=mmmnv2.__version__, started=started,
        finished=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        images=[dict(image=image, status='error', error=errors[image]) if image in errors else
                dict(image=image, status='ok', outputs=outputs[image]) for image in args.images])
    with replace_when_written(manifest_file) as temporary:
        mmengine.dump(manifest, temporary, file_format='json', indent=1)
    print(f'{found.images} of {len(args.images)} images: pictures in {osp.join(args.out_dir, "vis")}, results in '
          f'{osp.join(args.out_dir, "preds")}, record of the run in {manifest_file}')
    if errors:
        sys.exit(f'{len(errors)} of {len(args.images)} images were skipped (unreadable, too large, or their results '
                 f'could not be written): ' + ', '.join(errors))


if __name__ == '__main__':
    main()
