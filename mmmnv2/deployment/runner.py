"""The runners' shared part: a session of an exported file (``.onnx`` in onnxruntime or OpenVINO, ``.tflite`` in LiteRT,
``.pte`` in ExecuTorch) behind an MMEngine model (``ExportedModelRunner``), and how a config's model is swapped for a
runner (``exported_model_cfg``, ``init_exported_model``); the network inputs of packed samples (``network_inputs``).
"""
import copy
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.dataset import pseudo_collate
from mmengine.model import BaseModel
from mmengine.registry import MODELS, init_default_scope

from ..utils import config_host, drop_pretrained, fixed_input_size, init_pytorch_model, model_dataset_meta
from .graph_format import (
    META_DATASET_META,
    META_HOST,
    META_MODEL_SETTINGS,
    META_POSTPROCESS,
    META_PREPROCESS,
    check_model_settings,
    metadata_json,
    relative_difference,
)
from .sessions import open_session, read_metadata

ForwardResults = Union[List, Tuple[torch.Tensor, ...], torch.Tensor]


class ExportedModelRunner(BaseModel):
    """Pre-processing of the config, the exported network in its runtime, post-processing of the host.

    Args:
        model_file: the file ``export_onnx`` (``.onnx``) or ``export_mobile`` (``.tflite``, ``.pte``) wrote.
        model: the config's ``model`` dict. It is built (without weights) for its post-processing only.
        input_size: (height, width) the config feeds the network; a file made for another size is refused, and
            so is one whose recorded model settings (``graph_format.MODEL_SETTINGS``: anchors, box coder, classes,
            normalisation) differ from ``model``'s, naming the key.
        host: 'mmdet' or 'mmseg'; a file exported from the other host is refused.
        num_threads: the runtime's threads (None: its default, one per core).
        backend: the runtime (``sessions.FILE_BACKENDS``: 'onnxruntime' or 'openvino' for ``.onnx``, 'litert' for
            ``.tflite``, 'executorch' for ``.pte``); None: the format's default.
    """

    def __init__(self, model_file: str, model: dict, input_size: Sequence[int], host: str,
                 num_threads: Optional[int] = None, backend: Optional[str] = None) -> None:
        super().__init__(data_preprocessor=model.get('data_preprocessor', None))
        if not osp.isfile(model_file):
            raise FileNotFoundError(f'exported model file not found: {model_file}')
        self.model_file = model_file
        self.session = open_session(model_file, backend, num_threads)
        self.backend = self.session.backend  # the format's default runtime where ``backend`` is None
        self.metadata: Dict[str, str] = self.session.metadata
        if self.metadata.get(META_HOST, host) != host:
            raise ValueError(f'{model_file} was exported from a {self.metadata[META_HOST]} model, but the config is '
                             f'{host}')
        self.file_dataset_meta: Dict = metadata_json(model_file, self.metadata, META_DATASET_META, {})
        if not isinstance(self.file_dataset_meta, dict):
            raise ValueError(f'{model_file}: its metadata {META_DATASET_META} is not a JSON object')
        if META_MODEL_SETTINGS in self.metadata:  # anchors, box coder, classes, normalisation
            check_model_settings(model_file, metadata_json(model_file, self.metadata, META_MODEL_SETTINGS), model)
        # The post-processing in the graph (export_onnx(..., postprocess=True)); None: the graph is the network only.
        self.postprocess: Optional[Dict] = metadata_json(model_file, self.metadata, META_POSTPROCESS)
        # The pre-processing in the graph (preprocess=True: a uint8 image in); None: the network's input.
        self.preprocess: Optional[Dict] = metadata_json(model_file, self.metadata, META_PREPROCESS)
        shape = self.session.input_shape  # [batch, 3, height, width]; None where dynamic
        self.input_size = (int(input_size[0]), int(input_size[1]))
        if self.preprocess is not None:
            self.image_size = tuple(self.preprocess['image_size'])
            if tuple(self.preprocess['input_size']) != self.input_size or shape != [1, *self.image_size, 3]:
                raise ValueError(f'{model_file} takes {shape} images for a network of '
                                 f'{self.preprocess["input_size"]} inputs, but the config feeds '
                                 f'{self.input_size[0]}x{self.input_size[1]}; export it for this config\'s size')
            # the graph normalises and pads: the runner only stacks the images, in RGB
            self.data_preprocessor = MODELS.build(self.image_preprocessor(model.get('data_preprocessor') or {}))
        elif tuple(shape[2:]) != self.input_size:
            raise ValueError(f'{model_file} takes {shape[2]}x{shape[3]} inputs, but the config feeds '
                             f'{self.input_size[0]}x{self.input_size[1]}; export it for this config\'s size')
        self.batch_size = shape[0]  # None: any batch size
        self.output_names = list(self.session.output_shapes)
        # The host model, without weights: its heads hold the post-processing (anchors, coder, NMS, resizing).
        self.host_model = MODELS.build(model)
        if self.postprocess is None:
            self.check_output_channels({name: shape[1] for name, shape in self.session.output_shapes.items()})
        else:
            self.check_postprocess(self.postprocess)

    def image_preprocessor(self, preprocessor: Dict) -> Dict:
        """The data preprocessor for a file with its own pre-processing: the config's, stacking RGB pixels only."""
        return dict(preprocessor, mean=None, std=None, bgr_to_rgb=True, rgb_to_bgr=False)

    def check_output_channels(self, channels: Dict[str, Optional[int]]) -> None:
        """Refuse a file whose outputs do not have the channels the config's head post-processes (a file
        of another class count would otherwise give wrong results, or fail deep in the post-processing)."""
        raise NotImplementedError

    def check_postprocess(self, settings: Dict) -> None:
        """Refuse a post-processed file whose post-processing is not the config's (``postprocess_graph``)."""
        raise NotImplementedError

    def init_weights(self) -> None:
        """Nothing to initialise: the weights are in the exported file."""

    def test_step(self, data: Union[dict, tuple, list]) -> list:
        """Pre-processing, the exported network, post-processing, with PyTorch on one thread meanwhile.

        The network runs on the runtime's threads; PyTorch's thread pool, woken by the small pre- and post-processing
        operations, would otherwise keep spinning on the same cores (measured on 2 cores: SSDLite at 320, no boxes,
        16.8 ms per image with 2 PyTorch threads, 14.0 ms with 1, for an 11-13 ms network).
        """
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return super().test_step(data)
        finally:
            torch.set_num_threads(threads)

    def forward_network(self, inputs: np.ndarray, extra_inputs: Optional[Dict[str, np.ndarray]] = None
                        ) -> List[np.ndarray]:
        """Run the exported network on a float32 NCHW batch; one array per graph output (in ``output_names`` order).

        ``extra_inputs``: the graph's other inputs by name (a post-processed segmentor's crop and output size). A file
        with its own pre-processing gets the batch's RGB pixels as uint8 NHWC images of its image size.
        """
        if self.preprocess is not None:
            if tuple(inputs.shape[2:]) != self.image_size:
                raise ValueError(f'images of {inputs.shape[2]}x{inputs.shape[3]} reach {self.model_file}, which '
                                 f'takes {self.image_size[0]}x{self.image_size[1]} images')
            images = self.file_inputs(inputs)
            runs = [self.session.run(images[i:i + 1], extra_inputs) for i in range(len(images))]
            return [np.concatenate(outputs) for outputs in zip(*runs)]
        if tuple(inputs.shape[2:]) != self.input_size:
            raise ValueError(f'inputs of {inputs.shape[2]}x{inputs.shape[3]} reach the network, but '
                             f'{self.model_file} takes {self.input_size[0]}x{self.input_size[1]}')
        inputs = np.ascontiguousarray(inputs, dtype=np.float32)
        if self.batch_size is None or len(inputs) == self.batch_size:
            return self.session.run(inputs, extra_inputs)
        runs = [self.session.run(inputs[i:i + 1], extra_inputs) for i in range(len(inputs))]
        return [np.concatenate(outputs) for outputs in zip(*runs)]

    def file_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """A batch of ``data_preprocessor``'s float NCHW outputs as the file takes it: the same, or for a file with its
        own pre-processing (whose data preprocessor only stacks RGB pixels) uint8 NHWC images."""
        if self.preprocess is None:
            return inputs
        return np.ascontiguousarray(np.clip(np.round(inputs), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1))

    def forward(self, inputs: torch.Tensor, data_samples: Optional[list] = None,
                mode: str = 'predict') -> ForwardResults:
        if mode == 'tensor':
            return self.network_outputs(inputs)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f'an exported model only runs inference (mode "predict" or "tensor"), got mode {mode!r}')

    def network_outputs(self, inputs: torch.Tensor) -> ForwardResults:
        raise NotImplementedError

    def predict(self, inputs: torch.Tensor, data_samples: Optional[list]) -> list:
        raise NotImplementedError


def exported_model_cfg(cfg: Config, model_file: str, num_threads: Optional[int] = None,
                   backend: Optional[str] = None) -> ConfigDict:
    """A ``model`` config that runs the exported ``model_file`` (``.onnx``, ``.tflite`` or ``.pte``) in ``backend``
    (None: the format's default runtime) in place of the config's model (same pre- and post-processing)."""
    model = copy.deepcopy(cfg.model)
    drop_pretrained(model)  # the runner's host model only post-processes; its weights are never used
    return ConfigDict(type=config_host(cfg).exported_runner, model_file=model_file, model=model,
                      input_size=fixed_input_size(cfg), num_threads=num_threads, backend=backend)


def exported_config(cfg: Config, model_file: str, num_threads: Optional[int] = None,
                    backend: Optional[str] = None) -> Config:
    """``cfg`` with its model swapped for the runner of ``model_file`` (``exported_model_cfg``). For a file with its
    own pre-processing (``preprocess=True``) the test and val pipelines resize each image to the file's image size
    instead of the config's resizing (nothing is resized for images of that size: the file then does exactly what
    the config's pipeline does; other images go through one more resize first), after checking that the file's
    pre-processing is the config's."""
    if not osp.isfile(model_file):
        raise FileNotFoundError(f'exported model file not found: {model_file}')
    cfg = copy.deepcopy(cfg)
    preprocess = metadata_json(model_file, read_metadata(model_file), META_PREPROCESS)
    model = exported_model_cfg(cfg, model_file, num_threads, backend)  # the network's input size: cfg's pipeline
    if preprocess is not None:
        from .image_graph import image_test_pipeline, preprocess_settings
        from .postprocess_graph import check_settings
        check_settings(model_file, preprocess, preprocess_settings(cfg, tuple(preprocess['image_size'])),
                       'pre-processing')
        for loader in ('test_dataloader', 'val_dataloader'):
            dataset = (cfg.get(loader) or {}).get('dataset') or {}
            if 'pipeline' in dataset:
                dataset['pipeline'] = image_test_pipeline(dataset['pipeline'], preprocess['image_size'])
    cfg.model = model
    return cfg


def init_exported_model(config: Union[str, Config], model_file: str, num_threads: Optional[int] = None,
                        backend: Optional[str] = None) -> BaseModel:
    """The runner for the exported file ``model_file`` (``.onnx``, ``.tflite`` or ``.pte``) in ``backend`` (None: the
    format's default runtime) with ``num_threads`` threads and the config's processing, with ``.cfg`` (the config as
    ``exported_config`` adapts it) and ``.dataset_meta`` set (the file's class names, which must be as many as the
    config's; a warning prints both lists where they differ)."""
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    init_default_scope(config_host(cfg).scope)
    cfg = exported_config(cfg, model_file, num_threads, backend)
    model = MODELS.build(cfg.model)
    model.cfg = cfg
    model.dataset_meta = model_dataset_meta(cfg, model_file, model.file_dataset_meta)
    return model.eval()


def compare_with_pytorch(config: Union[str, Config], checkpoint: str, model_file: str) -> float:
    """Largest difference between the network outputs of the exported ``model_file`` and of the PyTorch model with
    ``checkpoint``, relative to the largest output, on a random input at the config's size in the [-1, 1] range the
    configs normalise to."""
    cfg = Config.fromfile(config) if isinstance(config, str) else copy.deepcopy(config)
    model = init_pytorch_model(cfg, checkpoint, 'cpu')
    runner = init_exported_model(cfg, model_file)
    inputs = torch.rand(1, 3, *fixed_input_size(cfg)) * 2 - 1
    with torch.no_grad():
        expected = model(inputs, mode='tensor')
    return relative_difference(expected, runner(inputs, mode='tensor'))


def network_inputs(data_preprocessor, samples: Iterable[dict]) -> List[np.ndarray]:
    """Each packed sample (the test pipeline's output) as the (1, 3, H, W) float array the network takes, through
    the model's ``data_preprocessor`` (in test mode)."""
    return [data_preprocessor(pseudo_collate([sample]), False)['inputs'].numpy() for sample in samples]
