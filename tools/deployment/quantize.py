"""Quantize an SSDLite or Mobile DeepLabv3 to int8 for onnxruntime or OpenVINO, with an accuracy guard.

    python tools/deployment/quantize.py CONFIG CHECKPOINT_OR_ONNX --out model_int8.onnx
                                        [--backend {onnxruntime,openvino}] [--calib-images 100] [--max-drop 1.0]
                                        [--num-threads N] [--work-dir DIR] [--cfg-options k=v ...] [--debug]

CHECKPOINT_OR_ONNX: a checkpoint (exported first, to ``<out>_fp32.onnx``) or an fp32 ONNX file of the config.
Calibration: ``--calib-images`` images of the config's train set through its test pipeline and data preprocessor.
``--backend onnxruntime``: onnxruntime's static QDQ quantization (per-channel int8 weights); ``openvino``: NNCF.
The fp32 and the int8 model are then evaluated in that runtime on the config's val set; where int8 loses more than
``--max-drop`` points (mAP@0.5 in percent, or mIoU), the first convolution and the predictors (SSDLite's class and box
convolutions, the decode head's classifier) are kept in float and the model quantized again. Both results and the
layers kept in float are printed and written to ``<out>.json``; the exit status is 1 if int8 still loses more than
the margin. The int8 file runs like the fp32 one: ``tools/test.py CONFIG model_int8.onnx --backend ...``.
Outputs that would overwrite the model or the config are refused; files are written through a temporary file and
renamed into place. Refusals print one line ``error: <file>: <reason>`` and exit with status 1 (``--debug``: the
traceback). See ``mmmnv2.deployment.quantization``. Needs ``pip install "mmmnv2[deploy]"``.
"""
import argparse
import sys

from mmengine.config import Config, DictAction

from mmmnv2.deployment import ONNX_BACKENDS, quantize_model
from mmmnv2.deployment.quantization import describe_report
from mmmnv2.utils import add_debug_argument, one_line_errors


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='int8 post-training quantization with an accuracy guard')
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('model', help='checkpoint (.pth) or fp32 ONNX file (.onnx) of the config')
    parser.add_argument('--out', required=True, help='int8 ONNX file to write (its report: the same name, .json)')
    parser.add_argument('--backend', choices=ONNX_BACKENDS, default='onnxruntime',
                        help='runtime the model is quantized for and evaluated in (openvino: quantized by NNCF)')
    parser.add_argument('--calib-images', type=int, default=100, help='train images to calibrate on')
    parser.add_argument('--max-drop', type=float, default=1.0,
                        help='most points int8 may lose on the val set before sensitive layers stay float')
    parser.add_argument('--num-threads', type=int, help='runtime threads of the evaluations')
    parser.add_argument('--work-dir', help='folder for the evaluations\' logs (default: a temporary one)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, e.g. data roots (key=value)')
    add_debug_argument(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with one_line_errors(args.debug):
        quantize(args)


def quantize(args: argparse.Namespace) -> None:
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    report = quantize_model(cfg, args.model, args.out, args.backend, calib_images=args.calib_images,
                            max_drop=args.max_drop, num_threads=args.num_threads, work_dir=args.work_dir)
    print(describe_report(report))
    if not report['within_margin']:
        sys.exit(f'int8 loses {report["drop"]:.2f} points, more than --max-drop {args.max_drop:g}')


if __name__ == '__main__':
    main()
