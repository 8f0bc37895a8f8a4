"""Distributed runs on machines without GPUs."""
import torch
import torch.distributed as dist
from mmengine.config import Config


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
