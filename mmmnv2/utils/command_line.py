"""The command line the tools share: the arguments of ``tools/train.py`` and ``tools/test.py``, as both hosts'
tools define them."""
import argparse
import os
import os.path as osp
from typing import Tuple

from mmengine.config import Config, DictAction

from .host import Host, config_host


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--work-dir``, ``--cfg-options``, ``--launcher`` and ``--local-rank``, as the hosts' tools take them."""
    parser.add_argument('--work-dir', help='the directory for logs, checkpoints and metrics')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, e.g. train_cfg.max_iters=100 (key=value, "[a,b]" '
                             'for lists)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_run_config(args: argparse.Namespace) -> Tuple[Config, Host]:
    """The config of ``args.config`` with the command line applied, and its host's record.

    Work dir priority: command line > config > ``./work_dirs/<config name>``. ``LOCAL_RANK`` is set from
    ``--local-rank`` unless the launcher set it.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = Config.fromfile(args.config)
    host = config_host(cfg)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg, host
