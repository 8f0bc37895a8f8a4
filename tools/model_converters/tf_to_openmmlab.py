"""Convert Google's released MobileNetV2 models (TFLite, TF-slim .npy, TF checkpoints, frozen graphs) to mmmnv2 weights.

    python tools/model_converters/tf_to_openmmlab.py SRC OUT.pth [--config CONFIG] [--labels LABELS.txt] [--debug]

SRC is a ``.tflite`` file (float or quantized), a folder of TF-slim ``.npy`` variables, a TF checkpoint (its prefix
``model.ckpt-30000`` or ``.index`` file) or a frozen graph (``frozen_inference_graph.pb``; needs ``pip install
"mmmnv2[tf-graph]"``); its kind is found from the file. TF DeepLab segmentation models convert into the model of
CONFIG (by default the configs for Google's models under ``configs/mobile_deeplabv3/``: width 0.5 -> the 257x257
output-stride-8 one, width 1.0 -> the 513x513 output-stride-16 one) and must fit it exactly: width, output stride,
ASPP and class count are checked, differences listed. The TF Object Detection API's SSDLite
(``ssdlite_mobilenet_v2_coco``) converts into ``configs/ssdlite/ssdlite_mobilenetv2_tf-weights_coco-300x300.py`` by
default, its 91 class outputs mapped to COCO's 80 classes (the COCO id of each in OUT.pth's meta). ImageNet
classifiers convert to OpenMMLab's classifier keys (``backbone.*``, ``head.fc.*``) with TF's 'SAME' padding; give
their class names with ``--labels`` (one a line, 1001 with ``background`` first). OUT.pth holds ``state_dict`` and
``meta`` (``dataset_meta.classes``, the source file), and loads with ``tools/test.py CONFIG OUT.pth``. OUT.pth may
not be one of the inputs (SRC, its files, CONFIG, LABELS); it is written through a temporary file and renamed into
place. ``--config`` with a classifier is refused (classifiers need none). Refusals print one line
``error: <file>: <reason>`` and exit with status 1 (``--debug``: the traceback).
"""
import argparse
import glob
import os
import os.path as osp
from typing import List, Optional

import torch

from mmmnv2.converters import ConversionError, convert_tf_file, read_tf_variables
from mmmnv2.converters.tf_mobilenet_v2 import describe_file
from mmmnv2.utils import add_debug_argument, one_line_errors, refuse_overwriting_inputs, replace_when_written

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Width multiplier of a TF DeepLab file -> the config of Google's model of that width.
DEEPLAB_CONFIGS = {
    0.5: 'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-dm0.5-os8_tf-weights_voc12-257x257.py',
    1.0: 'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-os16_tf-weights_voc12-513x513.py',
}


def default_config(src: str) -> Optional[str]:
    """Our config for Google's DeepLab model of SRC's width; None for other files."""
    variables = read_tf_variables(src)
    if variables.key('logits/semantic/weights') not in variables.arrays:
        return None
    width = variables.arrays.get(variables.key('MobilenetV2/expanded_conv_16/project/weights'))
    config = DEEPLAB_CONFIGS.get(width.shape[-1] / 320 if width is not None else None)
    if config is None:
        raise ConversionError(f'{src}: no config of ours for {describe_file(variables)}; give one with --config')
    return osp.join(REPO, config)


def source_files(src: str) -> List[str]:
    """The files SRC stands for: itself, the files of a folder, a TF checkpoint's ``.index`` and data files."""
    if osp.isdir(src):
        return [osp.join(src, name) for name in os.listdir(src)]
    prefix = src[:-len('.index')] if src.endswith('.index') else src
    return [src, *glob.glob(glob.escape(prefix) + '.index'), *glob.glob(glob.escape(prefix) + '.data-*')]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='.tflite file, folder of TF-slim .npy variables, or TF checkpoint prefix/.index')
    parser.add_argument('out', help='output checkpoint (.pth)')
    parser.add_argument('--config', help='config whose model the weights are for (segmentation models)')
    parser.add_argument('--labels', help='class names, one a line (ImageNet classifiers: 1001, background first)')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    with one_line_errors(args.debug):
        convert(args)


def convert(args: argparse.Namespace) -> None:
    refuse_overwriting_inputs(args.out, source_files(args.src) + [args.config, args.labels], 'output checkpoint')
    config = args.config or default_config(args.src)
    state_dict, meta = convert_tf_file(args.src, config, args.labels)
    with replace_when_written(args.out) as temporary:
        torch.save({'state_dict': state_dict, 'meta': meta}, temporary)
    print(f'{args.src} ({meta["tf_source"]["architecture"]}) -> {args.out}: {len(state_dict)} tensors'
          + (f' for {config}' if config else '') + (f'; {meta["note"]}' if 'note' in meta else ''))


if __name__ == '__main__':
    main()
