"""An exported Mobile DeepLabv3 (or any mmseg encoder-decoder) in onnxruntime, OpenVINO, LiteRT or ExecuTorch,
returning SegDataSamples."""
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.structures import PixelData

from ..registry import MODELS
from .postprocess_graph import (
    SEG_CROP_NAME,
    SEG_OUTPUT_SIZE_NAME,
    check_settings,
    crop_box,
    segmentation_settings,
)
from .runner import ExportedModelRunner


@MODELS.register_module()
class ExportedSegmentor(ExportedModelRunner):
    """Runs the exported network in its runtime (``backend``); upsampling, cropping and argmax are the host
    segmentor's, or the graph's own for a file exported with ``postprocess=True`` (one image per run then: the
    output size is the image's).

    Test images are padded to the file's fixed input size (as TF DeepLab pads to 513x513) and the padding is cropped
    from the logits, so an image larger than that size is refused: export with a larger ``--shape`` for those.
    Built from a config by ``init_exported_model`` (or ``tools/test.py CONFIG model.onnx``); see
    ``ExportedModelRunner``.
    """

    def __init__(self, model_file: str, model: dict, input_size: Sequence[int], num_threads: Optional[int] = None,
                 data_preprocessor: Optional[dict] = None, backend: Optional[str] = None) -> None:
        # MMEngine's Runner passes a config's top-level data_preprocessor; as for PyTorch models, the model's wins.
        model = dict(model, data_preprocessor=model.get('data_preprocessor') or data_preprocessor)
        preprocessor = dict(model.get('data_preprocessor') or {})
        preprocessor['test_cfg'] = dict(size=tuple(input_size))  # pad every test image to the fixed input size
        super().__init__(model_file, dict(model, data_preprocessor=preprocessor), input_size, 'mmseg', num_threads,
                         backend)

    def image_preprocessor(self, preprocessor: Dict) -> Dict:
        """Stacking RGB pixels only: the file pads; the images all have its image size."""
        return dict(super().image_preprocessor(preprocessor), size=None, size_divisor=None, test_cfg=None)

    def check_output_channels(self, channels: Dict[str, Optional[int]]) -> None:
        head = self.host_model.decode_head
        (name, found), = channels.items()
        if found != head.out_channels:
            raise ValueError(f'{self.model_file}: output {name} has {found} channels (classes), but the config\'s '
                             f'decode head has {head.out_channels} (num_classes={head.num_classes}); export the '
                             f'checkpoint of this config, or use the config the file was exported from')

    def check_postprocess(self, settings: Dict) -> None:
        check_settings(self.model_file, settings, segmentation_settings(self.host_model))

    def network_outputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """The decode head's logits, as the PyTorch segmentor's ``mode='tensor'``.

        Channels-last: the host's upsampling keeps the layout, and the argmax over classes of the full-size logits
        then reads contiguous memory (post-processing of a 512x512 VOC image: 52 ms -> 21 ms on one CPU thread).
        """
        logits = torch.from_numpy(self.forward_network(inputs.cpu().numpy())[0])
        return logits.contiguous(memory_format=torch.channels_last)

    def predict(self, inputs: torch.Tensor, data_samples: Optional[list]) -> list:
        if data_samples is None:
            raise ValueError('ExportedSegmentor.predict needs the data samples (image sizes and padding)')
        if self.postprocess is not None:
            if self.preprocess is not None:
                return self.image_label_maps(inputs, data_samples)
            return self.graph_label_maps(inputs, data_samples)
        if self.preprocess is not None:  # the network saw the image resized and padded by the file
            for sample in data_samples:
                sample.set_metainfo(self.network_meta())
        batch_img_metas = [sample.metainfo for sample in data_samples]
        seg_logits = self.host_model.decode_head.predict_by_feat(self.network_outputs(inputs), batch_img_metas)
        return self.host_model.postprocess_result(seg_logits, data_samples)

    def network_meta(self) -> Dict:
        """Where the image is in the input of a file with its own pre-processing: resized, padded bottom and right."""
        (height, width), (input_height, input_width) = self.preprocess['resized_shape'], self.input_size
        padding = [0, input_width - width, 0, input_height - height]
        return dict(img_shape=(height, width), pad_shape=self.input_size, padding_size=padding,
                    img_padding_size=padding)

    def image_label_maps(self, inputs: torch.Tensor, data_samples: list) -> list:
        """The label maps of a file with its pre- and post-processing: at the image's size (its input), resized
        (nearest) to ``ori_shape`` for an image the pipeline resized to it."""
        labels, = self.forward_network(inputs.cpu().numpy())
        labels = torch.from_numpy(labels).long().reshape(len(data_samples), 1, *labels.shape[-2:])  # LiteRT: no 1
        for sample, label_map in zip(data_samples, labels, strict=True):
            if tuple(label_map.shape[1:]) != tuple(sample.ori_shape[:2]):
                label_map = torch.nn.functional.interpolate(label_map[None].float(), size=tuple(sample.ori_shape[:2]),
                                                            mode='nearest')[0].long()
            sample.set_data({'pred_sem_seg': PixelData(data=label_map)})
        return data_samples

    def graph_label_maps(self, inputs: torch.Tensor, data_samples: list) -> list:
        """The post-processed graph's label maps: per image, the padding cropped and the logits resized to
        ``ori_shape`` in the graph; set as ``pred_sem_seg`` (int64, as the host's argmax), without ``seg_logits``."""
        for i, sample in enumerate(data_samples):
            meta = sample.metainfo
            if meta.get('flip', False):
                raise ValueError(f'{self.model_file} post-processes in the graph, which does not undo test-time '
                                 f'flips; use a file exported without postprocess for flip augmentation')
            padded = tuple(meta.get('pad_shape', meta['img_shape'])[:2])
            if padded != self.input_size:
                raise ValueError(f'{self.model_file} post-processes {self.input_size[0]}x{self.input_size[1]} inputs, '
                                 f'but an image padded to {padded} reached it')
            extra = {SEG_CROP_NAME: np.array(crop_box(meta, self.input_size), dtype=np.int64),
                     SEG_OUTPUT_SIZE_NAME: np.array(meta['ori_shape'][:2], dtype=np.int64)}
            labels, = self.forward_network(inputs[i:i + 1].cpu().numpy(), extra)
            sample.set_data({'pred_sem_seg': PixelData(data=torch.from_numpy(labels[0]).long())})
        return data_samples
