"""The command line the tools share: the arguments of ``tools/train.py`` and ``tools/test.py``, as both hosts'
tools define them, and how every tool reports a refusal: one line ``error: <file>: <reason>`` and exit status 1,
the traceback only with ``--debug``."""
import argparse
import contextlib
import os
import os.path as osp
import sys
from typing import Iterator, Sequence, Tuple

from mmengine.config import Config, DictAction

from .host import Host, config_host
from .input_size import fixed_input_size
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


def add_export_arguments(parser: argparse.ArgumentParser, postprocess_help: str) -> None:
    """The arguments the export tools share: ``--shape``, ``--verify``, ``--preprocess``, ``--image-size`` and
    ``--postprocess`` (``postprocess_help``: what the format's post-processing is); ``check_export_arguments``
    refuses the combinations that do not go together."""
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width (default: the config\'s test size)')
    parser.add_argument('--verify', action='store_true',
                        help='compare the file\'s network outputs with the PyTorch model\'s on a random input '
                             '(network only: not with --preprocess or --postprocess)')
    parser.add_argument('--preprocess', action='store_true',
                        help='start with the test pre-processing: a uint8 RGB image (1, H, W, 3) in')
    parser.add_argument('--image-size', type=int, nargs=2, metavar=('H', 'W'),
                        help='--preprocess: the image size the file takes (default: the input size)')
    parser.add_argument('--postprocess', action='store_true', help=postprocess_help)


def check_export_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit through ``parser.error`` on arguments of ``add_export_arguments`` that do not go together."""
    if args.verify and (args.preprocess or args.postprocess):
        parser.error('--verify compares the network outputs; export without --preprocess and --postprocess to verify')
    if args.image_size and not args.preprocess:
        parser.error('--image-size is the size of the image a --preprocess file takes; add --preprocess')


def export_input_size(cfg: Config, args: argparse.Namespace) -> Tuple[int, int]:
    """The network's input size of an export (``--shape``, else the config's); ValueError where ``--verify``, which
    runs the config's pre-processing, would need the config's size."""
    size = fixed_input_size(cfg)
    if args.shape and args.verify and tuple(args.shape) != tuple(size):
        raise ValueError(f'{cfg.filename}: --verify runs the config\'s pre-processing; it needs the config\'s input '
                         f'size {tuple(size)}, got --shape {args.shape}')
    return tuple(args.shape) if args.shape else tuple(size)


def describe_export_input(args: argparse.Namespace, shape: Sequence[int], batch: str = '1') -> str:
    """'1x3xHxW input' or '1xHxWx3 uint8 image input, pre-processing', and ', post-processing': what the tools
    print of a written file."""
    if args.preprocess:
        height, width = args.image_size or shape
        described = f'1x{height}x{width}x3 uint8 image input, pre-processing'
    else:
        described = f'{batch}x3x{shape[0]}x{shape[1]} input'
    return described + (', post-processing' if args.postprocess else '')


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
