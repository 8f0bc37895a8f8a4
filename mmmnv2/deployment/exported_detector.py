"""An exported SSDLite (or any mmdet single-stage detector) in onnxruntime, OpenVINO, LiteRT or ExecuTorch,
returning DetDataSamples."""
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.structures.bbox import scale_boxes
from mmengine.structures import InstanceData

from ..registry import MODELS
from .postprocess_graph import check_settings, detection_settings
from .runner import ExportedModelRunner


@MODELS.register_module()
class ExportedDetector(ExportedModelRunner):
    """Runs the exported network in its runtime (``backend``); anchor decoding and NMS are the host head's
    ``predict_by_feat``, or the graph's own for a file exported with ``postprocess=True`` (then the runner only
    rescales the boxes to the image).

    Built from a config by ``init_exported_model`` (or ``tools/test.py CONFIG model.onnx``); see
    ``ExportedModelRunner``.
    """

    def __init__(self, model_file: str, model: dict, input_size: Sequence[int], num_threads: Optional[int] = None,
                 data_preprocessor: Optional[dict] = None, backend: Optional[str] = None) -> None:
        # MMEngine's Runner passes a config's top-level data_preprocessor; as for PyTorch models, the model's wins.
        model = dict(model, data_preprocessor=model.get('data_preprocessor') or data_preprocessor)
        super().__init__(model_file, model, input_size, 'mmdet', num_threads, backend)

    def check_output_channels(self, channels: Dict[str, Optional[int]]) -> None:
        head = self.host_model.bbox_head
        priors = head.num_base_priors
        levels = head.prior_generator.num_levels
        priors = list(priors) if isinstance(priors, (list, tuple)) else [priors] * levels
        names = list(channels)
        if len(names) != 2 * levels:
            raise ValueError(f'{self.model_file} has {len(names)} outputs, but the config\'s head predicts on '
                             f'{levels} feature maps (class scores and box deltas for each: {2 * levels} outputs)')
        box_size = getattr(head.bbox_coder, 'encode_size', 4)
        for level, anchors in enumerate(priors):
            for name, per_anchor, what in ((names[level], head.cls_out_channels,
                                            f'class scores (num_classes={head.num_classes})'),
                                           (names[levels + level], box_size, 'box deltas')):
                if channels[name] != anchors * per_anchor:
                    raise ValueError(
                        f'{self.model_file}: output {name} has {channels[name]} channels, but the config\'s head '
                        f'expects {anchors * per_anchor} ({anchors} anchors x {per_anchor} {what}); export the '
                        f'checkpoint of this config, or use the config the file was exported from')

    def check_postprocess(self, settings: Dict) -> None:
        head = self.host_model.bbox_head
        check_settings(self.model_file, settings, detection_settings(head, head.test_cfg))

    def network_outputs(self, inputs: torch.Tensor) -> Tuple:
        """(class scores per level, box deltas per level), as the PyTorch detector's ``mode='tensor'``; for a
        post-processed file, the graph's (boxes, scores, labels) in network-input pixels."""
        outputs = [torch.from_numpy(array) for array in self.forward_network(inputs.cpu().numpy())]
        if self.postprocess is not None:
            return tuple(outputs)
        levels = len(outputs) // 2
        return outputs[:levels], outputs[levels:]

    def predict(self, inputs: torch.Tensor, data_samples: Optional[list]) -> list:
        if self.postprocess is not None:
            return self.host_model.add_pred_to_datasample(data_samples, self.graph_detections(inputs, data_samples))
        cls_scores, bbox_preds = self.network_outputs(inputs)
        head = self.host_model.bbox_head
        results = head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=[self.network_meta(s.metainfo)
                                                                                for s in data_samples], rescale=True)
        return self.host_model.add_pred_to_datasample(data_samples, results)

    def network_meta(self, meta: dict) -> dict:
        """The image meta of what the network saw: for a file with its own pre-processing, the image after the
        file's resize (its ``scale_factor`` composed with the pipeline's)."""
        if self.preprocess is None:
            return meta
        scale = self.preprocess['scale_factor']
        return dict(meta, img_shape=tuple(self.preprocess['resized_shape']),
                    scale_factor=tuple(s * f for s, f in zip(meta['scale_factor'], scale, strict=True)))

    def graph_detections(self, inputs: torch.Tensor, data_samples: list) -> List[InstanceData]:
        """The post-processed graph's detections, rescaled to the original images as the host's
        ``_bbox_post_process`` rescales them (boxes divided by ``scale_factor``). The graph's boxes are in its input's
        pixels: the network's input, or the image for a file with its own pre-processing."""
        boxes, scores, labels, *converged = self.network_outputs(inputs)
        if converged and not bool(converged[0].all()):
            warnings.warn(f'{self.model_file}: its {self.postprocess.get("rounds")} NMS rounds did not reach greedy '
                          f'NMS\'s result on an image; its boxes may differ from MMDetection\'s', stacklevel=2)
        graph_input = self.image_size if self.preprocess is not None else self.input_size
        results = []
        for i, sample in enumerate(data_samples):
            meta = sample.metainfo
            if tuple(meta['img_shape'][:2]) != graph_input:
                # The graph clips boxes to the input size; the host clips them to img_shape.
                raise ValueError(f'{self.model_file} post-processes {graph_input[0]}x{graph_input[1]} '
                                 f'images, but an image of img_shape {tuple(meta["img_shape"][:2])} reached it; use '
                                 f'a pipeline that resizes to the input size, or a file without postprocess')
            found = labels[i] >= 0
            results.append(InstanceData(
                bboxes=scale_boxes(boxes[i][found], [1 / s for s in meta['scale_factor']]),
                scores=scores[i][found], labels=labels[i][found].long()))
        return results
