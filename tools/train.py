"""Train a detector or segmentor from an MMDetection or MMSegmentation config.

The host library follows from the config's ``default_scope`` ('mmdet' or 'mmseg'); the flags are the ones both
hosts' ``tools/train.py`` accept:

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--partial-load] [--amp] [--cfg-options k=v ...]
                                 [--launcher {none,pytorch,slurm,mpi}] [--debug]

Checkpoints (``load_from``, ``--resume``, ``Pretrained`` initialisation) load weights-only, and a checksummed
checkpoint that changed since it was saved is refused. ``load_from`` and ``--resume`` load strictly: a checkpoint
that does not fit the model stops the run listing the missing, unexpected and mis-shaped keys, unless
``--partial-load`` (fine-tuning from another model: the skipped keys are printed as a table). ``--resume`` without a
path resumes from the newest checkpoint of the work dir that is complete and matches its checksum, and says which
ones it skipped; a checkpoint of weights only is refused for ``--resume`` (it holds no training state: start from
it with ``--cfg-options load_from=CKPT``). Refusals print one line ``error: <file>: <reason>`` and exit with status 1
(``--debug``: the traceback).
"""
import argparse

from mmmnv2.engine import check_training_state, find_resumable_checkpoint, run_loop
from mmmnv2.utils import add_run_arguments, load_run_config, one_line_errors


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model (MMDetection or MMSegmentation config)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision training')
    parser.add_argument('--auto-scale-lr', action='store_true', help='scale the lr with the total batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or from the newest usable one in the work dir when no path is given')
    parser.add_argument(
        '--partial-load', action='store_true',
        help='load_from: load the weights that fit the model and print the skipped keys (fine-tuning), instead of '
             'refusing a checkpoint that does not fit')
    add_run_arguments(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with one_line_errors(args.debug):
        train(args)


def train(args: argparse.Namespace) -> None:
    cfg, _ = load_run_config(args)

    if args.amp:
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print('AMP training is already enabled in the config.')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise ValueError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        # MMEngine's own search trusts <work_dir>/last_checkpoint, even when that file is damaged or absent.
        cfg.load_from = find_resumable_checkpoint(cfg.work_dir)
        cfg.resume = cfg.load_from is not None
    elif args.resume is not None:
        check_training_state(args.resume)
        cfg.resume = True
        cfg.load_from = args.resume

    run_loop(cfg, args.launcher, 'train', partial_load=args.partial_load)


if __name__ == '__main__':
    main()
