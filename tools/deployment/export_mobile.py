"""Export an SSDLite or Mobile DeepLabv3 checkpoint for phones: LiteRT (.tflite) or ExecuTorch (.pte).

    python tools/deployment/export_mobile.py CONFIG CHECKPOINT --format {tflite,executorch} --out FILE
                                             [--shape H W] [--verify] [--preprocess [--image-size H W]]
                                             [--postprocess]
                                             [--int8 [--calib-images 100] [--max-drop 1.0] [--num-threads N]] [--debug]

The network is the one ``tools/deployment/pytorch2onnx.py`` exports (batch norm folded, the config's fixed test size
unless ``--shape`` says otherwise, NCHW float32 in, the model's raw outputs out), converted by ``litert-torch``
(``.tflite``) or ``torch.export`` + ExecuTorch's XNNPACK backend (``.pte``); the config's host and class names travel
inside the file (``mmmnv2/deployment/mobile_export.py``). ``tools/test.py CONFIG FILE`` evaluates it and
``tools/infer.py CONFIG FILE IMAGES`` draws its predictions, with the config's pre- and post-processing.
``--verify`` compares the file's outputs with the PyTorch model's on a random input.

``--preprocess``: the file takes one decoded uint8 RGB image, (1, H, W, 3) of ``--image-size`` (default: the input
size), and resizes, normalises and pads it as the config's test pipeline; ``--postprocess``: it returns boxes /
scores / labels (detection: class-aware NMS over the best 300 (anchor, class) pairs, and a flag saying the NMS
converged) or, with ``--preprocess``, the uint8 label map of the image (``mmmnv2/deployment/image_graph.py``).

``--int8``: int8 through the format's own PT2E quantizer (LiteRT's ``PT2EQuantizer``, ExecuTorch's
``XNNPACKQuantizer``), calibrated on ``--calib-images`` images of the config's train set, with the accuracy guard of
``tools/deployment/quantize.py``: fp32 (written as ``<FILE stem>_fp32.<ext>``) and int8 evaluated on the val set in
the format's runtime; where int8 loses more than ``--max-drop`` points, the first convolution and the predictors are
kept in float; the report goes beside FILE as ``.json``, and the exit status is 1 if int8 still loses more than the
margin. With ``--preprocess`` / ``--postprocess`` the int8 file is image in, result out: only the network between
them is quantized (the resizing, normalisation, decoding, NMS and argmax stay as in the fp32 file), calibrated on
the train images resized to ``--image-size``, and scored on val images resized to it (LiteRT with
``--postprocess``: the output convolutions stay float too, as its converter would requantize every level's output
to one scale). Needs ``pip install "mmmnv2[mobile]"``. Refusals print one line ``error: <file>: <reason>`` and exit with
status 1 (``--debug``: the traceback).
"""
import argparse
import sys

from mmengine.config import Config

from mmmnv2.deployment import MOBILE_FORMATS, compare_with_pytorch, export_mobile, quantize_model
from mmmnv2.deployment.quantization import describe_report
from mmmnv2.utils import (
    add_debug_argument,
    add_export_arguments,
    check_export_arguments,
    describe_export_input,
    export_input_size,
    one_line_errors,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export a detector or segmentor to LiteRT (.tflite) or ExecuTorch '
                                                 '(.pte)')
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint file (.pth)')
    parser.add_argument('--format', required=True, choices=tuple(MOBILE_FORMATS),
                        help='tflite: LiteRT flatbuffer; executorch: ExecuTorch program for XNNPACK')
    parser.add_argument('--out', required=True, help='file to write (.tflite for tflite, .pte for executorch)')
    add_export_arguments(parser, 'end with the post-processing: boxes / scores / labels, or the label map '
                                 '(segmentation: with --preprocess)')
    parser.add_argument('--int8', action='store_true',
                        help='int8 through the format\'s PT2E quantizer, with the accuracy guard of quantize.py')
    parser.add_argument('--calib-images', type=int, default=100, help='--int8: train images to calibrate on')
    parser.add_argument('--max-drop', type=float, default=1.0,
                        help='--int8: most points int8 may lose on the val set before sensitive layers stay float')
    parser.add_argument('--num-threads', type=int, help='--int8: runtime threads of the evaluations')
    add_debug_argument(parser)
    args = parser.parse_args()
    check_export_arguments(parser, args)
    if args.int8 and (args.verify or args.shape):
        parser.error('--int8 exports at the config\'s size and checks the result on the val set; it takes neither '
                     '--verify nor --shape')
    return args


def main() -> None:
    args = parse_args()
    with one_line_errors(args.debug):
        export(args)


def export(args: argparse.Namespace) -> None:
    cfg = Config.fromfile(args.config)
    shape = export_input_size(cfg, args)
    if not args.out.endswith(MOBILE_FORMATS[args.format]):
        raise ValueError(f'{args.out}: --format {args.format} writes {MOBILE_FORMATS[args.format]} files')
    if args.int8:
        report = quantize_model(cfg, args.checkpoint, args.out, calib_images=args.calib_images,
                                max_drop=args.max_drop, num_threads=args.num_threads, preprocess=args.preprocess,
                                image_size=tuple(args.image_size) if args.image_size else None,
                                postprocess=args.postprocess)
        print(describe_report(report))
        if not report['within_margin']:
            sys.exit(f'int8 loses {report["drop"]:.2f} points, more than --max-drop {args.max_drop:g}')
        return
    export_mobile(cfg, args.checkpoint, args.out, args.format, input_size=shape, preprocess=args.preprocess,
                  postprocess=args.postprocess, image_size=tuple(args.image_size) if args.image_size else None)
    print(f'Wrote {args.out} ({describe_export_input(args, shape)}, {args.format})')
    if args.verify:
        print(f'Largest output difference, {args.format} vs PyTorch (relative to the largest output): '
              f'{compare_with_pytorch(cfg, args.checkpoint, args.out):.2e}')


if __name__ == '__main__':
    main()
