"""Checks shared by the detector and the segmentor: the channels each part produces are those the next expects."""
from typing import Optional, Sequence


def check_channels(producer: str, produced: Optional[Sequence[int]], consumer: str,
                   expected: Optional[Sequence[int]], names: Optional[Sequence[str]] = None) -> None:
    """Raise ``ValueError`` naming both numbers where ``consumer`` expects other channels than ``producer`` gives.

    Either side may be ``None`` (a host module that does not report its channels): nothing to check then.
    """
    if produced is None or expected is None:
        return
    produced, expected = tuple(produced), tuple(expected)
    if len(produced) != len(expected):
        raise ValueError(f'{consumer} expects {len(expected)} inputs with channels {expected}, '
                         f'but {producer} gives {len(produced)}: {produced}')
    for index, (got, want) in enumerate(zip(produced, expected)):
        if got != want:
            label = f' ({names[index]})' if names else ''
            raise ValueError(f'{consumer} expects {want} channels for input {index}, but {producer} output '
                             f'{index}{label} has {got} channels (all: {producer} {produced}, {consumer} {expected})')
