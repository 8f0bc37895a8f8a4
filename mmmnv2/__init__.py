"""mmmnv2: the MobileNetV2 paper's backbone, SSDLite and Mobile DeepLabv3 as OpenMMLab components.

Importing the package registers every component in the ``mmmnv2`` registry scope, allow-lists the types MMEngine
writes into checkpoints (so ``--resume`` works on torch >= 2.6 without turning safe loading off), and makes MMEngine's
``CheckpointLoader`` load every checkpoint weights-only, whatever ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` says. The
registered components are also attributes of the package (``mmmnv2.MobileNetV2`` is what
``type='mmmnv2.MobileNetV2'`` builds).
"""
from . import datasets, deployment, engine, models  # noqa: F401  (registers the components)
from .datasets import StrictCocoDataset, StrictPascalVOCDataset, StrictSegDataset
from .datasets.transforms import CheckSegMap, SSDRandomCrop, TFLegacyResize
from .deployment import ExportedDetector, ExportedSegmentor
from .engine import RMSpropTF, StrictLoadHook, VerifiedCheckpointHook
from .models import (
                     MobileDeepLabV3,
                     MobileDeepLabV3Head,
                     MobileNetV2,
                     SSDLite,
                     SSDLiteAnchorGenerator,
                     SSDLiteHead,
                     SSDLiteNeck,
                     TFHardExampleMiner,
                     TFSigmoidClassificationLoss,
)
from .utils import allow_mmengine_checkpoint_types, register_safe_checkpoint_loaders
from .version import __version__

allow_mmengine_checkpoint_types()
register_safe_checkpoint_loaders()

__all__ = ['CheckSegMap', 'MobileDeepLabV3', 'MobileDeepLabV3Head', 'MobileNetV2', 'ExportedDetector',
           'ExportedSegmentor', 'RMSpropTF', 'SSDLite', 'SSDLiteAnchorGenerator', 'SSDLiteHead', 'SSDLiteNeck',
           'SSDRandomCrop', 'StrictCocoDataset', 'StrictLoadHook', 'StrictPascalVOCDataset', 'StrictSegDataset',
           'TFHardExampleMiner', 'TFLegacyResize', 'TFSigmoidClassificationLoss', 'VerifiedCheckpointHook',
           '__version__']
