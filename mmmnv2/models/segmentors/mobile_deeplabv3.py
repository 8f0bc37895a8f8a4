"""The Mobile DeepLabv3 segmentor (paper Sec. 6.3, Table 7): MMSegmentation's encoder-decoder whose head follows
from the backbone.

The decode head reads one backbone map (``in_index``); its channels and its output stride (which sets the atrous
rates) are facts of the backbone (``feature_info``). When the config leaves ``in_channels`` or ``output_stride`` of
the decode head out, they are taken from the backbone; when it gives them, they are checked against it when the
model is built, with the config keys named. The detector's counterpart is ``mmmnv2.SSDLite``.
"""
import inspect
from typing import Optional, Sequence

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS as MMSEG_MODELS

from mmmnv2.registry import MODELS


def _accepts(head_cfg: dict, argument: str) -> bool:
    """Whether the head class of ``head_cfg`` takes ``argument`` (our head takes ``output_stride``, the hosts' not)."""
    head_class = head_cfg['type'] if inspect.isclass(head_cfg['type']) else MMSEG_MODELS.get(head_cfg['type'])
    return head_class is not None and argument in inspect.signature(head_class).parameters


@MODELS.register_module()
class MobileDeepLabV3(EncoderDecoder):
    """``EncoderDecoder`` (same arguments) whose decode head takes its input channels and output stride from the
    backbone when the config omits them, and is checked against the backbone when the config gives them."""

    def _init_decode_head(self, decode_head: dict) -> None:
        feature_info = getattr(self.backbone, 'feature_info', None)
        if feature_info is None or self.with_neck:  # channels after a neck are the neck's: not checked here
            return super()._init_decode_head(decode_head)
        in_index = decode_head.get('in_index', -1)
        indices = in_index if isinstance(in_index, Sequence) else [in_index]
        try:
            features = [feature_info[i] for i in indices]
        except (IndexError, TypeError):
            raise ValueError(f'model.decode_head.in_index {in_index!r} selects no output of model.backbone, which has '
                             f'{len(feature_info)}: {[f.name for f in feature_info]}') from None
        decode_head = dict(decode_head)
        channels = [f.channels for f in features]
        given = decode_head.get('in_channels')
        if given is None:
            decode_head['in_channels'] = channels if isinstance(in_index, Sequence) else channels[0]
        elif list(given if isinstance(given, Sequence) else [given]) != channels:
            raise ValueError(f'model.decode_head.in_channels is {given}, but the backbone output it reads '
                             f'(in_index {in_index}: {[f.name for f in features]}) has {channels} channels; leave '
                             f'model.decode_head.in_channels out to take them from model.backbone')
        if _accepts(decode_head, 'output_stride'):
            stride = features[-1].stride
            given_stride: Optional[int] = decode_head.get('output_stride')
            if given_stride is None:
                decode_head['output_stride'] = stride
            elif given_stride != stride:
                raise ValueError(f'model.decode_head.output_stride is {given_stride}, but the backbone output it reads '
                                 f'({features[-1].name}) has stride {stride} (model.backbone.output_stride); leave '
                                 f'model.decode_head.output_stride out to take it from model.backbone')
        super()._init_decode_head(decode_head)
