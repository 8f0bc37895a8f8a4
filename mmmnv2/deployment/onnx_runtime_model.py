"""The part both ONNX runners share: an onnxruntime session behind an MMEngine model."""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.model import BaseModel
from mmengine.registry import MODELS

from .onnx_interface import INPUT_NAME, META_DATASET_META, META_HOST, META_POSTPROCESS, import_deploy_dependency

ForwardResults = Union[List, Tuple[torch.Tensor, ...], torch.Tensor]


class ONNXRuntimeModel(BaseModel):
    """Pre-processing of the config, the exported network in onnxruntime, post-processing of the host model.

    Args:
        onnx_file: the file ``export_onnx`` wrote.
        model: the config's ``model`` dict. It is built (without weights) for its post-processing only.
        input_size: (height, width) the config feeds the network; an ONNX file made for another size is refused.
        host: 'mmdet' or 'mmseg'; an ONNX file exported from the other host is refused.
        num_threads: onnxruntime intra-op threads (None: onnxruntime's default, one per core).
    """

    def __init__(self, onnx_file: str, model: dict, input_size: Sequence[int], host: str,
                 num_threads: Optional[int] = None) -> None:
        super().__init__(data_preprocessor=model.get('data_preprocessor', None))
        onnxruntime = import_deploy_dependency('onnxruntime')
        if not osp.isfile(onnx_file):
            raise FileNotFoundError(f'ONNX file not found: {onnx_file}')
        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
            raise ValueError(f'num_threads must be a positive integer or None, got {num_threads!r}')
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads or 0
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle onnxruntime threads would spin on the cores the pre- and post-processing need next.
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        self.onnx_file = onnx_file
        self.session = onnxruntime.InferenceSession(onnx_file, options, providers=['CPUExecutionProvider'])
        metadata = self.session.get_modelmeta().custom_metadata_map
        if metadata.get(META_HOST, host) != host:
            raise ValueError(f'{onnx_file} was exported from a {metadata[META_HOST]} model, but the config is {host}')
        self.file_dataset_meta: Dict = json.loads(metadata.get(META_DATASET_META, '{}'))
        # The post-processing in the graph (export_onnx(..., postprocess=True)); None: the graph is the network only.
        self.postprocess: Optional[Dict] = (json.loads(metadata[META_POSTPROCESS]) if META_POSTPROCESS in metadata
                                            else None)
        shape = self.session.get_inputs()[0].shape  # [batch, 3, height, width]; batch is a name when dynamic
        self.input_size = (int(input_size[0]), int(input_size[1]))
        if tuple(shape[2:]) != self.input_size:
            raise ValueError(f'{onnx_file} takes {shape[2]}x{shape[3]} inputs, but the config feeds '
                             f'{self.input_size[0]}x{self.input_size[1]}; export it for this config\'s size')
        self.batch_size = shape[0] if isinstance(shape[0], int) else None  # None: any batch size
        self.output_names = [output.name for output in self.session.get_outputs()]
        # The host model, without weights: its heads hold the post-processing (anchors, coder, NMS, resizing).
        self.host_model = MODELS.build(model)
        if self.postprocess is None:
            self.check_output_channels({output.name: output.shape[1] for output in self.session.get_outputs()})
        else:
            self.check_postprocess(self.postprocess)

    def check_output_channels(self, channels: Dict[str, Union[int, str]]) -> None:
        """Refuse a file whose outputs do not have the channels the config's head post-processes (an ONNX file
        of another class count would otherwise give wrong results, or fail deep in the post-processing)."""
        raise NotImplementedError

    def check_postprocess(self, settings: Dict) -> None:
        """Refuse a post-processed file whose post-processing is not the config's (``onnx_postprocess``)."""
        raise NotImplementedError

    def init_weights(self) -> None:
        """Nothing to initialise: the weights are in the ONNX file."""

    def test_step(self, data: Union[dict, tuple, list]) -> list:
        """Pre-processing, the ONNX network, post-processing, with PyTorch on one thread meanwhile.

        The network runs on onnxruntime's threads; PyTorch's thread pool, woken by the small pre- and post-processing
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
        """Run the ONNX graph on a float32 NCHW batch; one array per graph output (in ``output_names`` order).

        ``extra_inputs``: the graph's other inputs by name (a post-processed segmentor's crop and output size).
        """
        if tuple(inputs.shape[2:]) != self.input_size:
            raise ValueError(f'inputs of {inputs.shape[2]}x{inputs.shape[3]} reach the network, but '
                             f'{self.onnx_file} takes {self.input_size[0]}x{self.input_size[1]}')
        inputs = np.ascontiguousarray(inputs, dtype=np.float32)
        extra_inputs = extra_inputs or {}
        if self.batch_size is None or len(inputs) == self.batch_size:
            return self.session.run(self.output_names, {INPUT_NAME: inputs, **extra_inputs})
        runs = [self.session.run(self.output_names, {INPUT_NAME: inputs[i:i + 1], **extra_inputs})
                for i in range(len(inputs))]
        return [np.concatenate(outputs) for outputs in zip(*runs)]

    def forward(self, inputs: torch.Tensor, data_samples: Optional[list] = None,
                mode: str = 'predict') -> ForwardResults:
        if mode == 'tensor':
            return self.network_outputs(inputs)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f'an ONNX model only runs inference (mode "predict" or "tensor"), got mode {mode!r}')

    def network_outputs(self, inputs: torch.Tensor) -> ForwardResults:
        raise NotImplementedError

    def predict(self, inputs: torch.Tensor, data_samples: Optional[list]) -> list:
        raise NotImplementedError
