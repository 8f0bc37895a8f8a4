"""Export an SSDLite or Mobile DeepLabv3 checkpoint to ONNX.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT [--output-file model.onnx] [--shape H W]
                                            [--dynamic-batch] [--postprocess] [--preprocess [--image-size H W]]
                                            [--verify] [--debug]

The graph is the network with batch norm folded into the convolutions, at the config's fixed test size (320x320
for the COCO SSDLite, 512x512 for the VOC Mobile DeepLabv3) unless ``--shape`` says otherwise; ``--dynamic-batch``
leaves the batch dimension free. Decoding + NMS (detection) and upsampling + argmax (segmentation) run after the
graph in the runner, with the host's own code, or, with ``--postprocess``, in the graph (the config's ``test_cfg``
written into it; detection outputs boxes / scores / labels, segmentation uint8 label maps at the image's size, see
``mmmnv2/deployment/postprocess_graph.py``).

``--preprocess``: the graph takes one decoded uint8 RGB image, (1, H, W, 3) of ``--image-size`` (default: the input
size), and resizes, normalises and pads it as the config's test pipeline (``mmmnv2/deployment/image_graph.py``);
with ``--postprocess`` too it is image in, result out (boxes in the image's pixels; label maps of its size).

``tools/test.py CONFIG model.onnx`` evaluates any of these files and ``tools/infer.py CONFIG model.onnx IMAGES``
draws its predictions. ``--verify`` compares the file's outputs with the PyTorch model's on a random input. The
output file may not be the checkpoint or the config (also through links); it is written through a temporary file and
renamed into place. Refusals print one line ``error: <file>: <reason>``
and exit with status 1 (``--debug``: the traceback). Needs ``pip install "mmmnv2[deploy]"``.
"""
import argparse
import os.path as osp

from mmengine.config import Config

from mmmnv2.deployment import compare_with_pytorch, export_onnx
from mmmnv2.utils import (
    add_debug_argument,
    add_export_arguments,
    check_export_arguments,
    describe_export_input,
    export_input_size,
    one_line_errors,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export a detector or segmentor to ONNX')
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint file (.pth)')
    parser.add_argument('--output-file', help='ONNX file to write (default: the checkpoint\'s name with .onnx)')
    parser.add_argument('--dynamic-batch', action='store_true', help='leave the batch dimension free')
    add_export_arguments(parser, 'end the graph with the post-processing (detection: box decoding + class-aware NMS '
                                 'with the config\'s test_cfg; segmentation: resizing + argmax to uint8 labels)')
    add_debug_argument(parser)
    args = parser.parse_args()
    check_export_arguments(parser, args)
    return args


def main() -> None:
    args = parse_args()
    with one_line_errors(args.debug):
        export(args)


def export(args: argparse.Namespace) -> None:
    cfg = Config.fromfile(args.config)
    shape = export_input_size(cfg, args)
    output_file = args.output_file or osp.splitext(args.checkpoint)[0] + '.onnx'
    export_onnx(cfg, args.checkpoint, output_file, input_size=shape, dynamic_batch=args.dynamic_batch,
                postprocess=args.postprocess, preprocess=args.preprocess,
                image_size=tuple(args.image_size) if args.image_size else None)
    described = describe_export_input(args, shape, 'N' if args.dynamic_batch else '1')
    print(f'Wrote {output_file} ({described}{" in the graph" if args.preprocess or args.postprocess else ""})')
    if args.verify:
        print(f'Largest output difference, ONNX vs PyTorch (relative to the largest output): '
              f'{compare_with_pytorch(cfg, args.checkpoint, output_file):.2e}')


if __name__ == '__main__':
    main()
