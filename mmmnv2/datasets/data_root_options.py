"""``--cfg-options`` that point a config's data sets at another folder, for the tools' command line."""
import os.path as osp
from typing import List, Union

from mmengine.config import Config

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
EVALUATORS = ('val_evaluator', 'test_evaluator')


def _data_root_keys(dataset: dict, key: str) -> List[str]:
    """Keys of every ``data_root`` in ``dataset``, through wrappers (``dataset=``) and concatenations."""
    if 'data_root' in dataset:
        return [f'{key}.data_root']
    if isinstance(dataset.get('dataset'), dict):
        return _data_root_keys(dataset['dataset'], f'{key}.dataset')
    keys = []
    for index, child in enumerate(dataset.get('datasets', [])):
        keys += _data_root_keys(child, f'{key}.datasets.{index}')
    return keys


def dataset_keys(dataset: dict, key: str) -> List[str]:
    """Keys of the innermost data sets in ``dataset`` (those holding ``data_root``), e.g. for ``.indices=N``."""
    return [k[:-len('.data_root')] for k in _data_root_keys(dataset, key)]


def data_root_options(config: Union[str, Config], data_root: str) -> List[str]:
    """``key=value`` overrides (``tools/train.py --cfg-options ...``) moving a config's data to ``data_root``.

    Every data loader's data set (wrapped or concatenated ones included) gets ``data_root``; an evaluator reading
    an annotation file under the config's ``data_root`` (``CocoMetric``) gets the same file under the new root.
    The relative paths (annotation files, image folders) stay the config's.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    root = osp.abspath(data_root) + '/'
    options = []
    for loader in LOADERS:
        if cfg.get(loader) is not None:
            options += [f'{key}={root}' for key in _data_root_keys(cfg[loader]['dataset'], f'{loader}.dataset')]
    old_root = cfg.get('data_root', None)
    for evaluator in EVALUATORS:
        ann_file = (cfg.get(evaluator) or {}).get('ann_file') if isinstance(cfg.get(evaluator), dict) else None
        if ann_file and old_root and ann_file.startswith(old_root):
            options.append(f'{evaluator}.ann_file={root}{ann_file[len(old_root):]}')
    if not options:
        raise ValueError(f'no data_root found in the data loaders of {getattr(cfg, "filename", config)}')
    return options
