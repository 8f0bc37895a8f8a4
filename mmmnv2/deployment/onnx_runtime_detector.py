"""An exported SSDLite (or any mmdet single-stage detector) in onnxruntime, returning ``DetDataSample``s."""
from typing import List, Optional, Sequence, Tuple

import torch

from ..registry import MODELS
from .onnx_runtime_model import ONNXRuntimeModel


@MODELS.register_module()
class ONNXRuntimeDetector(ONNXRuntimeModel):
    """Runs the network in onnxruntime; anchor decoding and NMS are the host head's ``predict_by_feat``.

    Built from a config by ``init_onnx_model`` (or ``tools/test.py CONFIG model.onnx``); see ``ONNXRuntimeModel``.
    """

    def __init__(self, onnx_file: str, model: dict, input_size: Sequence[int], num_threads: Optional[int] = None,
                 data_preprocessor: Optional[dict] = None) -> None:
        # MMEngine's Runner passes a config's top-level data_preprocessor; as for PyTorch models, the model's wins.
        model = dict(model, data_preprocessor=model.get('data_preprocessor') or data_preprocessor)
        super().__init__(onnx_file, model, input_size, 'mmdet', num_threads)

    def network_outputs(self, inputs: torch.Tensor) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """(class scores per level, box deltas per level), as the PyTorch detector's ``mode='tensor'``."""
        outputs = [torch.from_numpy(array) for array in self.forward_network(inputs.cpu().numpy())]
        levels = len(outputs) // 2
        return outputs[:levels], outputs[levels:]

    def predict(self, inputs: torch.Tensor, data_samples: Optional[list]) -> list:
        cls_scores, bbox_preds = self.network_outputs(inputs)
        head = self.host_model.bbox_head
        results = head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=[s.metainfo for s in data_samples],
                                       rescale=True)
        return self.host_model.add_pred_to_datasample(data_samples, results)
