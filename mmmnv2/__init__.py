"""mmmnv2: the MobileNetV2 paper's backbone, SSDLite and Mobile DeepLabv3 as OpenMMLab components.

Importing the package registers every component in the ``mmmnv2`` registry scope and allow-lists the types MMEngine
writes into checkpoints, so ``--resume`` works on torch >= 2.6 without turning safe loading off.
"""
from . import datasets, deployment, engine, models  # noqa: F401  (registers the components)
from .utils import allow_mmengine_checkpoint_types
from .version import __version__

allow_mmengine_checkpoint_types()

__all__ = ['__version__']
