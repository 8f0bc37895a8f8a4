"""Shared helpers of the tests that train the toy models through the tools users run."""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DET_CONFIG = osp.join(REPO, 'configs/ssdlite/ssdlite_mobilenetv2_1xb8-600i_toyshapes-192x192.py')
SEG_CONFIG = osp.join(REPO, 'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-os16_1xb8-300i_toyshapes-192x192.py')
SEG_MAX_ITERS = Config.fromfile(SEG_CONFIG).train_cfg.max_iters
SEG_INTERRUPTED_AT = SEG_MAX_ITERS // 2  # where the segmentation fixture's first run is "killed"


def run_tool(*args: str, check: bool = True, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run a Python tool of the repository with one intra-op thread.

    The test runner itself holds threads; oversubscribed OpenMP threads spin instead of working on 2 cores.
    """
    env = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    result = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f'{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}')
    return result


def det_data_options(root: str) -> List[str]:
    """``--cfg-options`` pointing the toy detection config's loaders and evaluators at ``root``."""
    root = root.rstrip('/') + '/'
    return [f'{loader}.dataset.data_root={root}' for loader in ('train_dataloader', 'val_dataloader',
                                                                 'test_dataloader')] + [
        f'{evaluator}.ann_file={root}annotations/instances_val.json' for evaluator in ('val_evaluator',
                                                                                        'test_evaluator')]


def seg_data_options(root: str) -> List[str]:
    """``--cfg-options`` pointing the toy segmentation config's loaders at ``root``."""
    return [f'{loader}.dataset.data_root={root}' for loader in ('train_dataloader', 'val_dataloader',
                                                                 'test_dataloader')]


def scalars(work_dir: str, metric: str) -> Tuple[List[dict], List[dict]]:
    """(training records, records with ``metric``) of every ``vis_data/scalars.json`` in ``work_dir``, by step."""
    records = []
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            records += [json.loads(line) for line in f]
    train = sorted((r for r in records if 'loss' in r), key=lambda r: r['iter'])
    evaluated = sorted((r for r in records if metric in r), key=lambda r: r['step'])
    return train, evaluated


def reported(metric: str, output: str) -> float:
    """The last value of ``metric`` a tool logged (e.g. 'coco/bbox_mAP_50', 'mIoU')."""
    match = re.findall(rf'{re.escape(metric)}: ([0-9.]+)', output)
    assert match, output[-3000:]
    return float(match[-1])


def untrained_checkpoint(config: str, path: str) -> str:
    """Save the config's model with its initial (untrained) weights as a checkpoint; return the path."""
    import torch

    from mmmnv2.apis import init_model
    model = init_model(config, device='cpu')
    torch.save({'state_dict': model.state_dict()}, path)
    return path
