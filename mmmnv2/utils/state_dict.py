"""Checkpoint weights against a model: refused, listing what differs, unless partial loading is asked for.

MMEngine's ``Runner`` loads ``load_from`` non-strictly and only logs the keys it skipped, so a checkpoint of another
model (a segmentation checkpoint under a detection config) is evaluated or trained on with mostly random weights and
a normal exit. Here a mismatch stops the load with the missing, unexpected and mis-shaped keys; partial loading (for
fine-tuning from another task's checkpoint) is an explicit choice and prints the skipped keys as a table.
"""
import re
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import nn

# MMEngine's Runner strips the wrapper prefix of checkpoints saved from a distributed model in the same way.
_WRAPPER_PREFIX = re.compile(r'^module\.')


class CheckpointMismatchError(ValueError):
    """A checkpoint's weights do not fit the model of the config (missing, unexpected or mis-shaped keys)."""


def checkpoint_state_dict(checkpoint: Mapping, name: str) -> Dict[str, torch.Tensor]:
    """The weights of a loaded checkpoint (under 'state_dict', or the bare dict), wrapper prefix removed."""
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping):
        raise CheckpointMismatchError(f'checkpoint {name} holds no state dict (a dict of tensors)')
    not_tensors = sorted(str(key) for key, value in state.items() if not torch.is_tensor(value))
    if not_tensors:
        raise CheckpointMismatchError(f'checkpoint {name}: entries of its state dict are not tensors: '
                                      f'{", ".join(not_tensors[:10])}')
    return {_WRAPPER_PREFIX.sub('', key): value for key, value in state.items()}


def compare_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor]) -> Dict[str, List[Tuple[str, str, str]]]:
    """{'missing': [...], 'unexpected': [...], 'mis-shaped': [...]}, each a list of (key, checkpoint shape, model
    shape), '-' where the key is absent."""
    expected = model.state_dict()
    return {
        'missing': [(key, '-', str(tuple(expected[key].shape))) for key in sorted(set(expected) - set(state))],
        'unexpected': [(key, str(tuple(state[key].shape)), '-') for key in sorted(set(state) - set(expected))],
        'mis-shaped': [(key, str(tuple(state[key].shape)), str(tuple(expected[key].shape)))
                       for key in sorted(set(state) & set(expected)) if state[key].shape != expected[key].shape],
    }


def mismatch_table(differences: Dict[str, List[Tuple[str, str, str]]], limit: Optional[int] = None) -> str:
    """The differences as a text table (kind, key, checkpoint shape, model shape), at most ``limit`` rows a kind."""
    rows = []
    for kind, entries in differences.items():
        shown = entries if limit is None else entries[:limit]
        rows += [(kind, *entry) for entry in shown]
        if len(entries) > len(shown):
            rows.append((kind, f'... {len(entries) - len(shown)} more', '', ''))
    header = ('', 'key', 'checkpoint', 'model')
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    return '\n'.join('  ' + '  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in [header, *rows])


def check_checkpoint_fits(model: nn.Module, checkpoint: Mapping, name: str, partial: bool = False) -> None:
    """Raise ``CheckpointMismatchError`` listing the differences, or with ``partial`` print them as skipped.

    Partial loading still refuses a checkpoint that shares no weight with the model.
    """
    state = checkpoint_state_dict(checkpoint, name)
    differences = compare_state_dict(model, state)
    counts = ', '.join(f'{len(v)} {k}' for k, v in differences.items() if v)
    if not counts:
        return
    loaded = len(state) - len(differences['unexpected']) - len(differences['mis-shaped'])
    if not partial or loaded == 0:
        raise CheckpointMismatchError(
            f'checkpoint {name} does not fit the config\'s model ({counts} keys' +
            ('; no weight in common' if loaded == 0 else '') + '):\n' + mismatch_table(differences, limit=20) +
            ('' if partial else '\nUse the checkpoint of this config, or load it partially on purpose '
                                '(fine-tuning: tools/train.py --partial-load).'))
    print_log(f'Partial load of {name}: {loaded} tensors loaded, these are skipped ({counts}):\n'
              + mismatch_table(differences), logger='current')


def load_checkpoint_into(model: nn.Module, checkpoint: Mapping, name: str, partial: bool = False) -> None:
    """Copy a loaded checkpoint's weights into ``model`` after ``check_checkpoint_fits``."""
    check_checkpoint_fits(model, checkpoint, name, partial)
    state = checkpoint_state_dict(checkpoint, name)
    expected = model.state_dict()
    fitting = {key: value for key, value in state.items() if key in expected and value.shape == expected[key].shape}
    model.load_state_dict(fitting, strict=not partial)
