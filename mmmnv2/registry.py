"""The plugin's registries (scope ``mmmnv2``), children of MMEngine's roots.

Because they hang under MMEngine's root registries, a config running in the host's own scope
(``default_scope='mmdet'`` or ``'mmseg'``) reaches our classes as ``type='mmmnv2.ClassName'``, while the hosts'
own names (``type='MobileNetV2'``) keep resolving to the host classes.
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='mmmnv2', locations=['mmmnv2.models'])
TASK_UTILS = Registry('task util', parent=MMENGINE_TASK_UTILS, scope='mmmnv2', locations=['mmmnv2.models'])
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope='mmmnv2', locations=['mmmnv2.datasets'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='mmmnv2', locations=['mmmnv2.engine'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope='mmmnv2', locations=['mmmnv2.datasets'])
