"""Build an ONNX runner (onnxruntime or OpenVINO) from a config: ``init_onnx_model``, or ``onnx_model_cfg``
to swap a config's model."""
import copy
from typing import Optional, Union

from mmengine.config import Config, ConfigDict
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope

from ..utils import config_dataset_meta, config_host, drop_pretrained, fixed_input_size
from .backends import check_backend


def onnx_model_cfg(cfg: Config, onnx_file: str, num_threads: Optional[int] = None,
                   backend: str = 'onnxruntime') -> ConfigDict:
    """A ``model`` config that runs ``onnx_file`` in ``backend`` ('onnxruntime' or 'openvino') in place of the
    config's model (same pre- and post-processing)."""
    check_backend(backend)
    model = copy.deepcopy(cfg.model)
    drop_pretrained(model)  # the runner's host model only post-processes; its weights are never used
    return ConfigDict(type=config_host(cfg).onnx_runner, onnx_file=onnx_file, model=model,
                      input_size=fixed_input_size(cfg), num_threads=num_threads, backend=backend)


def init_onnx_model(config: Union[str, Config], model_file: str, num_threads: Optional[int] = None,
                    backend: str = 'onnxruntime') -> BaseModel:
    """The runner for the ONNX file ``model_file`` in ``backend`` ('onnxruntime' or 'openvino') with ``num_threads``
    threads and the config's processing, with ``.cfg`` and ``.dataset_meta`` set."""
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    init_default_scope(config_host(cfg).scope)
    from mmengine.registry import MODELS
    model = MODELS.build(onnx_model_cfg(cfg, model_file, num_threads, backend))
    model.cfg = cfg
    model.dataset_meta = model.file_dataset_meta or config_dataset_meta(cfg)
    return model.eval()
