"""Which OpenMMLab host (MMDetection or MMSegmentation) a config belongs to, and host-stack fixes the tools apply."""
from typing import Dict

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DATASETS, MODELS, DefaultScope
from torch import nn

HOSTS = ('mmdet', 'mmseg')


def setup_host(cfg: Config) -> str:
    """Return the config's host scope, checking it is one mmmnv2 serves."""
    scope = cfg.get('default_scope', None)
    if scope not in HOSTS:
        raise ValueError(f'default_scope of the config must be one of {HOSTS} (the host library), got {scope!r}')
    return scope


def build_host_model(cfg: Config) -> nn.Module:
    """The config's model, built by its host library, in eval mode and with SyncBN reverted to BN (for one device).

    Weights are left as constructed: nothing is downloaded (a ``Pretrained`` init_cfg is read only by
    ``init_weights``); load a checkpoint into the model, or count its parameters and multiply-adds.
    """
    with DefaultScope.overwrite_default_scope(setup_host(cfg)):
        model = MODELS.build(cfg.model)
    return revert_sync_batchnorm(model).eval()


def drop_pretrained(cfg: dict) -> None:
    """Remove every pretrained-weights setting from a model config, in place: benchmarks need no download."""
    if not isinstance(cfg, dict):
        if isinstance(cfg, list):
            for item in cfg:
                drop_pretrained(item)
        return
    if cfg.get('pretrained') is not None:
        cfg['pretrained'] = None
    init_cfg = cfg.get('init_cfg')
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        cfg['init_cfg'] = None
    elif isinstance(init_cfg, list):
        cfg['init_cfg'] = [c for c in init_cfg if c.get('type') != 'Pretrained']
    for value in cfg.values():
        drop_pretrained(value)


def config_dataset_meta(cfg: Config) -> Dict:
    """Class names and palette of the config's test data set: its ``metainfo``, else its dataset class's."""
    dataset = cfg.test_dataloader.dataset
    meta = dataset.get('metainfo', None) or cfg.get('metainfo', None)
    if meta:
        return dict(meta)
    with DATASETS.switch_scope_and_registry(setup_host(cfg)) as registry:
        return dict(getattr(registry.get(dataset.type), 'METAINFO', {}))


def setup_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Let ``--launcher pytorch`` run on machines without GPUs.

    MMEngine 0.10.7 assumes GPUs in distributed runs: it calls ``torch.cuda.set_device`` (absent from CPU builds)
    and wraps the model with ``device_ids=[LOCAL_RANK]`` (which DistributedDataParallel refuses for CPU modules).
    Without CUDA, start the process group on gloo here (MMEngine then skips its own start) and wrap without device
    ids. With CUDA nothing changes.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise ValueError(f'--launcher {launcher} needs GPUs; on CPU use --launcher pytorch (torchrun)')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
