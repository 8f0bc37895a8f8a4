"""The command line the tools share: the arguments of ``tools/train.py`` and ``tools/test.py``, as both hosts'
tools define them, and how every tool reports a refusal: one line ``error: <file>: <reason>`` and exit status 1,
the traceback only with ``--debug``."""
import argparse
import contextlib
import os
import os.path as osp
import sys
from typing import Iterator, Tuple

from mmengine.config import Config, DictAction

from .host import Host, config_host
from .safe_checkpoint import CorruptCheckpointError, UnsafeCheckpointError
from .state_dict import CheckpointMismatchError

# What a tool reports as a refusal rather than a crash: bad input (ValueError, TypeError; ConversionError and
# CheckpointMismatchError are ValueErrors), files that cannot be read or written (OSError), refused checkpoints.
REFUSALS = (ValueError, TypeError, OSError, UnsafeCheckpointError, CorruptCheckpointError, CheckpointMismatchError)


def add_debug_argument(parser: argparse.ArgumentParser) -> None:
    """``--debug``: show the traceback of a refusal instead of its one-line message."""
    parser.add_argument('--debug', action='store_true',
                        help='on an error, show the traceback instead of one line "error: <file>: <reason>"')


def error_line(error: BaseException) -> str:
    """``<file>: <reason>`` of a refusal: OSErrors name their file apart from the reason; the package's own
    refusals start with the file."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f'{error.filename}: {error.strerror}'
    return str(error).strip() or type(error).__name__


@contextlib.contextmanager
def one_line_errors(debug: bool = False) -> Iterator[None]:
    """Exit with status 1 and ``error: <file>: <reason>`` when the block raises one of ``REFUSALS``; with
    ``debug`` the exception propagates with its traceback."""
    try:
        yield
    except REFUSALS as error:
        if debug:
            raise
        sys.exit(f'error: {error_line(error)}')


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--work-dir``, ``--cfg-options``, ``--launcher`` and ``--local-rank``, as the hosts' tools take them, and
    ``--debug``."""
    parser.add_argument('--work-dir', help='the directory for logs, checkpoints and metrics')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, e.g. train_cfg.max_iters=100 (key=value, "[a,b]" '
                             'for lists)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_debug_argument(parser)


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
