"""Train a detector or segmentor from an MMDetection or MMSegmentation config.

The host library follows from the config's ``default_scope`` ('mmdet' or 'mmseg'); the flags are the ones both
hosts' ``tools/train.py`` accept:

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
                                 [--launcher {none,pytorch,slurm,mpi}]
"""
import argparse

from mmengine.runner import Runner

from mmmnv2.utils import add_run_arguments, load_run_config, refuse_unsafe_checkpoint, setup_cpu_distributed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model (MMDetection or MMSegmentation config)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision training')
    parser.add_argument('--auto-scale-lr', action='store_true', help='scale the lr with the total batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or from the latest one in the work dir when no path is given')
    add_run_arguments(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
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
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    setup_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg)
    with refuse_unsafe_checkpoint():
        runner.train()


if __name__ == '__main__':
    main()
