"""A config's PyTorch model with its weights: built by the host, loaded strictly and weights-only, with class names."""
import copy
from typing import Optional, Union

import torch
from mmengine.config import Config
from mmengine.model import BaseModel

from .host import build_host_model, config_host, model_dataset_meta
from .pretrained import drop_pretrained
from .safe_checkpoint import load_checkpoint_file
from .state_dict import load_checkpoint_into


def init_pytorch_model(config: Union[str, Config], checkpoint: Optional[str] = None,
                       device: Optional[str] = None) -> BaseModel:
    """The config's model with the weights of ``checkpoint``, in eval mode, with ``cfg`` and ``dataset_meta`` set.

    ``checkpoint``: None for the initial weights of ``init_weights`` (nothing downloaded: a ``Pretrained`` init_cfg
    is dropped); else a checkpoint file, loaded weights-only (``load_checkpoint_file``: refusals name the file) and
    strictly (``load_checkpoint_into``: a checkpoint of another model is refused listing the missing, unexpected and
    mis-shaped keys). ``dataset_meta``: the checkpoint's (a warning prints both lists where its class names differ
    from the config's), else the config's data set's. ``device``: default GPU if
    there is one, else CPU.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    config_host(cfg)  # refuses a config of another library before anything is built
    model_cfg = copy.deepcopy(cfg)
    drop_pretrained(model_cfg.model)  # the weights come from the checkpoint, or stay as initialised
    model = build_host_model(model_cfg)
    meta = None
    if checkpoint is None:
        model.init_weights()
    else:
        loaded = load_checkpoint_file(checkpoint)
        load_checkpoint_into(model, loaded, checkpoint)
        meta = (loaded.get('meta') or {}).get('dataset_meta')
    model.dataset_meta = model_dataset_meta(cfg, checkpoint, meta)
    model.cfg = cfg
    return model.eval().to(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
