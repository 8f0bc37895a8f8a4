"""Export an SSDLite or Mobile DeepLabv3 checkpoint for phones: LiteRT (.tflite) or ExecuTorch (.pte).

    python tools/deployment/export_mobile.py CONFIG CHECKPOINT --format {tflite,executorch} --out FILE
                                             [--shape H W] [--verify]

The network is the one ``tools/deployment/pytorch2onnx.py`` exports (batch norm folded, the config's fixed test size
unless ``--shape`` says otherwise, NCHW float32 in, the model's raw outputs out), converted by ``litert-torch``
(``.tflite``) or ``torch.export`` + ExecuTorch's XNNPACK backend (``.pte``); the config's host and class names travel
inside the file (``mmmnv2/deployment/mobile_export.py``). ``tools/test.py CONFIG FILE`` evaluates it and
``tools/infer.py CONFIG FILE IMAGES`` draws its predictions, with the config's pre- and post-processing.
``--verify`` compares the file's outputs with the PyTorch model's on a random input. Needs
``pip install "mmmnv2[mobile]"``.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config

from mmmnv2.deployment import MOBILE_FORMATS, compare_with_pytorch, export_mobile
from mmmnv2.utils import fixed_input_size


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export a detector or segmentor to LiteRT (.tflite) or ExecuTorch '
                                                 '(.pte)')
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint file (.pth)')
    parser.add_argument('--format', required=True, choices=tuple(MOBILE_FORMATS),
                        help='tflite: LiteRT flatbuffer; executorch: ExecuTorch program for XNNPACK')
    parser.add_argument('--out', required=True, help='file to write (.tflite for tflite, .pte for executorch)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width (default: the config\'s test size)')
    parser.add_argument('--verify', action='store_true',
                        help='compare the file\'s outputs with the PyTorch model\'s on a random input')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    shape = tuple(args.shape) if args.shape else fixed_input_size(cfg)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    try:
        export_mobile(cfg, args.checkpoint, args.out, args.format, input_size=shape)
    except (FileNotFoundError, ValueError, ImportError) as error:
        sys.exit(f'error: {args.out}: {error}')
    print(f'Wrote {args.out} (1x3x{shape[0]}x{shape[1]} input, {args.format})')
    if args.verify:
        if args.shape and tuple(args.shape) != fixed_input_size(cfg):
            sys.exit('error: --verify runs the config\'s pre-processing; it needs the config\'s input size')
        print(f'Largest output difference, {args.format} vs PyTorch (relative to the largest output): '
              f'{compare_with_pytorch(cfg, args.checkpoint, args.out):.2e}')


if __name__ == '__main__':
    main()
