"""What the detector and the segmentor share: input channels taken from the part before, and checked against it.

As torchvision's ``retrieve_out_channels``, a part whose config omits ``in_channels`` gets the channels the part
before it reports (the backbone's ``feature_info``, the neck's ``out_channels``), so a config states them nowhere;
where a config does state them, they are checked when the model is built, with errors naming the config keys.
"""
from typing import Optional, Sequence

# TF Object Detection API's batch norm for SSDLite (ssdlite_mobilenet_v2_coco.config: epsilon 0.001, decay 0.9997);
# PyTorch's momentum is 1 - decay. The default of the SSDLite neck and head.
TF_SSD_NORM_CFG = dict(type='BN', eps=1e-3, momentum=3e-4)


def with_in_channels(part: dict, channels: Optional[Sequence[int]]) -> dict:
    """``part`` (a module config) with ``in_channels`` set to ``channels`` where the config omits it."""
    if channels is None or part.get('in_channels') is not None:
        return part
    return dict(part, in_channels=tuple(channels))


def check_channels(producer: str, produced: Optional[Sequence[int]], consumer: str,
                   expected: Optional[Sequence[int]], names: Optional[Sequence[str]] = None) -> None:
    """Raise ``ValueError`` naming both numbers where ``consumer`` expects other channels than ``producer`` gives.

    ``producer`` and ``consumer`` are config keys (``model.backbone``, ``model.neck.in_channels``). Either side may be
    ``None`` (a host module that does not report its channels): nothing to check then.
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
                             f'{index}{label} has {got} channels (all: {producer} {produced}, {consumer} {expected}); '
                             f'leave {consumer} out of the config to take the channels from {producer}')
