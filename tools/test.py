"""Evaluate a checkpoint with an MMDetection or MMSegmentation config.

The host library follows from the config's ``default_scope`` ('mmdet' or 'mmseg'):

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE_OR_DIR] [--show-dir DIR] [--tta]
                                           [--backend {onnxruntime,openvino,litert,executorch}] [--num-threads N]
                                           [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}] [--debug]

``--out``: detection writes the raw predictions to a ``.pkl`` file (as MMDetection does); segmentation writes the
predicted label maps as PNG files into the directory (as MMSegmentation does). ``--show-dir``: pictures of the
predictions, drawn by the host's visualizer (detection: under ``<work_dir>/<timestamp>/<show_dir>``, as
MMDetection does; segmentation: in ``<show_dir>``, as MMSegmentation does). ``--tta``: test-time
augmentation from the config's ``tta_model`` and ``tta_pipeline``.

The checkpoint loads weights-only and strictly: one that does not fit the config's model stops the run before the
evaluation, listing the missing, unexpected and mis-shaped keys. CHECKPOINT may also be an ONNX file written by
``tools/deployment/pytorch2onnx.py`` (fp32) or ``tools/deployment/quantize.py`` (int8), or a ``.tflite`` / ``.pte``
file written by ``tools/deployment/export_mobile.py``: the network then runs in onnxruntime or OpenVINO
(``--backend``; ``.onnx``), LiteRT (``.tflite``) or ExecuTorch (``.pte``), with the config's pre-processing,
post-processing and evaluators (``--num-threads``: the runtime's threads). ``--out`` naming the checkpoint or the
config is refused. Refusals print one line ``error: <file>: <reason>`` and exit with status 1 (``--debug``: the
traceback).
"""
import argparse

from mmmnv2.deployment import BACKENDS, EXPORTED_EXTENSIONS
from mmmnv2.engine import run_loop
from mmmnv2.utils import add_run_arguments, load_run_config, one_line_errors, refuse_overwriting_inputs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a model (MMDetection or MMSegmentation config)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (.pth), or an exported .onnx, .tflite or .pte file')
    parser.add_argument('--out', help='detection: a .pkl file for the predictions; segmentation: a directory '
                                      'for the predicted label maps')
    parser.add_argument('--show-dir', help='directory for pictures of the predictions (detection: relative to the '
                                           'timestamped run folder in the work dir, as MMDetection)')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation (tta_model, tta_pipeline)')
    parser.add_argument('--backend', choices=BACKENDS,
                        help='runtime of an exported CHECKPOINT (default: onnxruntime for .onnx, litert for .tflite, '
                             'executorch for .pte)')
    parser.add_argument('--num-threads', type=int, help='runtime threads for an exported CHECKPOINT')
    add_run_arguments(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with one_line_errors(args.debug):
        evaluate(args)


def evaluate(args: argparse.Namespace) -> None:
    cfg, host = load_run_config(args)

    if args.checkpoint.lower().endswith(EXPORTED_EXTENSIONS):
        from mmmnv2.deployment import exported_config
        if args.tta:
            raise ValueError('--tta runs the PyTorch model; it cannot run an exported file')
        cfg = exported_config(cfg, args.checkpoint, args.num_threads, args.backend)
        cfg.load_from = None
    elif args.backend is not None or args.num_threads is not None:
        raise ValueError(f'--backend and --num-threads run an exported CHECKPOINT ({", ".join(EXPORTED_EXTENSIONS)}), '
                         f'got {args.checkpoint}')
    else:
        cfg.load_from = args.checkpoint

    if args.show_dir:
        visualization = cfg.default_hooks.get('visualization')
        if visualization is None:
            raise ValueError('--show-dir needs a "visualization" hook in default_hooks of the config')
        visualization.draw = True
        host.apply_show_dir(cfg, args.show_dir)

    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ValueError(f'--tta needs tta_model and tta_pipeline in {args.config}')
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline

    if args.out is not None:
        refuse_overwriting_inputs(args.out, (args.config, args.checkpoint), '--out file')
        host.apply_out(cfg, args.out)

    run_loop(cfg, args.launcher, 'test')


if __name__ == '__main__':
    main()
