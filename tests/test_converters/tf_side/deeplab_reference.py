"""TF DeepLab's inference graph of a Mobile DeepLabv3 (MobileNetV2 backbone, head without ASPP), built in TensorFlow
from given variables, frozen as TF DeepLab's ``export_model.py`` freezes it and run on images: the reference of the
tests. Runs in the TensorFlow environment of ``tools/misc/setup_tf_venv.sh``.

The graph is written from TF DeepLab's sources (``research/deeplab``) with ``tf.compat.v1`` ops:

- ``export_model.py``: input ``ImageTensor`` (uint8, [1, H, W, 3]); ``input_preprocess.py`` pads it to the crop size
  with the mean pixel 127.5 (bottom and right; no resize: the exporter's ``min/max_resize_value`` unset, as for the
  released VOC models); output ``SemanticPredictions`` = the argmax sliced to the image's size;
- ``core/feature_extractor.py``: pixels to [-1, 1] (``2 / 255 * x - 1``); MobileNetV2 (``nets/mobilenet``) up to
  ``layer_18``: ``MobilenetV2/Conv`` (3x3, stride 2), ``MobilenetV2/expanded_conv[_N]/{expand,depthwise,project}``
  (expand 1x1 + BN + relu6 where the block expands, depthwise 3x3 + BN + relu6, project 1x1 + BN, the residual where
  stride is 1 and the widths equal), 'SAME' padding; at the output stride the stride of a block becomes 1 and the
  dilation of the following depthwise convs grows by it (``mobilenet.py``'s ``output_stride``), BN epsilon 1e-3;
- ``model.py``: ``image_pooling`` (average pool over the whole feature map, 1x1 conv + BN + relu, resized back with
  ``align_corners=True``), ``aspp0`` (1x1 conv + BN + relu), their concatenation (image pooling first),
  ``concat_projection`` (1x1 conv + BN + relu), BN epsilon 1e-5; ``logits/semantic`` (1x1 conv with biases);
  ``predict_labels``: logits resized to the padded image with ``align_corners=True``, argmax.

BatchNorm is the unfolded ``FusedBatchNorm`` op of the 2018 graphs; variables are TF1 ``VariableV2`` with their
``<name>/read`` ops, turned into constants by ``convert_variables_to_constants``. The frozen graph written is then
read back into a fresh graph and run on every image: ``outputs.npz`` holds per image the upsampled logits
(``logits``, [H, W, classes]) and ``SemanticPredictions`` (``semantic``, [H, W]); ``run.json`` the timing.

    python deeplab_reference.py VARIABLES.npz IMAGES.npz OUT_DIR --output-stride 16 --crop-size 513
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

BACKBONE_EPS = 1e-3  # TF-slim batch_norm's default (mobilenet's training_scope)
HEAD_EPS = 1e-5  # deeplab/model.py: batch_norm_epsilon
STRIDE_2_BLOCKS = ('MobilenetV2/Conv', 'MobilenetV2/expanded_conv_1', 'MobilenetV2/expanded_conv_3',
                   'MobilenetV2/expanded_conv_6', 'MobilenetV2/expanded_conv_13')  # mobilenet_v2.py's V2_DEF


def scale_dimension(size: int, scale: float) -> int:
    """deeplab/core/utils.py: the size of a feature map at ``scale`` of the input."""
    return int((size - 1) * scale + 1)


def resize_bilinear(images, size):
    return tf.compat.v1.image.resize_bilinear(images, size, align_corners=True)


class Builder:
    def __init__(self, arrays: dict) -> None:
        self.variables = {name: tf.compat.v1.Variable(arrays[name], name=name) for name in arrays.files}

    def conv(self, net, scope: str, stride: int = 1, rate: int = 1, depthwise: bool = False, eps: float = BACKBONE_EPS,
             activation=tf.nn.relu6):
        if depthwise:
            net = tf.compat.v1.nn.depthwise_conv2d(net, self.variables[f'{scope}/depthwise_weights'],
                                                   [1, stride, stride, 1], 'SAME', rate=[rate, rate])
        else:
            net = tf.compat.v1.nn.conv2d(net, self.variables[f'{scope}/weights'], [1, stride, stride, 1], 'SAME')
        if f'{scope}/biases' in self.variables:
            return tf.nn.bias_add(net, self.variables[f'{scope}/biases'])
        bn = {key: self.variables[f'{scope}/BatchNorm/{key}'] for key in ('gamma', 'beta', 'moving_mean',
                                                                          'moving_variance')}
        net = tf.raw_ops.FusedBatchNorm(x=net, scale=bn['gamma'], offset=bn['beta'], mean=bn['moving_mean'],
                                        variance=bn['moving_variance'], epsilon=eps, is_training=False)[0]
        return net if activation is None else activation(net)

    def mobilenet_v2(self, net, output_stride: int):
        current_stride, rate = 1, 1
        blocks = ['MobilenetV2/Conv'] + ['MobilenetV2/expanded_conv' + (f'_{i}' if i else '') for i in range(17)]
        for block in blocks:
            if not any(name.startswith(block + '/') for name in self.variables):
                break
            stride = 2 if block in STRIDE_2_BLOCKS else 1
            if current_stride == output_stride:  # mobilenet.py: atrous from here on
                layer_stride, layer_rate, rate = 1, rate, rate * stride
            else:
                layer_stride, layer_rate = stride, 1
                current_stride *= stride
            if block == 'MobilenetV2/Conv':
                net = self.conv(net, block, stride=layer_stride)
                continue
            inputs = net
            if f'{block}/expand/weights' in self.variables:
                net = self.conv(net, f'{block}/expand')
            net = self.conv(net, f'{block}/depthwise', stride=layer_stride, rate=layer_rate, depthwise=True)
            net = self.conv(net, f'{block}/project', activation=None)
            if layer_stride == 1 and inputs.shape[3] == net.shape[3]:
                net = net + inputs
        return net

    def head(self, features, crop_size: int, output_stride: int):
        feature_size = scale_dimension(crop_size, 1.0 / output_stride)
        pooled = tf.compat.v1.nn.avg_pool2d(features, [1, feature_size, feature_size, 1], [1, 1, 1, 1], 'VALID')
        pooled = self.conv(pooled, 'image_pooling', eps=HEAD_EPS, activation=tf.nn.relu)
        pooled = resize_bilinear(pooled, [feature_size, feature_size])
        branches = [pooled, self.conv(features, 'aspp0', eps=HEAD_EPS, activation=tf.nn.relu)]
        net = self.conv(tf.concat(branches, 3), 'concat_projection', eps=HEAD_EPS, activation=tf.nn.relu)
        return self.conv(net, 'logits/semantic', activation=None)


def build_inference_graph(arrays, crop_size: int, output_stride: int) -> tf.Graph:
    graph = tf.Graph()
    with graph.as_default():
        image_tensor = tf.compat.v1.placeholder(tf.uint8, [1, None, None, 3], name='ImageTensor')
        image = tf.cast(tf.squeeze(image_tensor, 0), tf.float32)
        image_size = tf.shape(image)[:2]
        mean_pixel = 127.5  # input_preprocess.py: padded with the mean pixel
        padded = tf.image.pad_to_bounding_box(image - mean_pixel, 0, 0, crop_size, crop_size) + mean_pixel
        images = (2.0 / 255.0) * padded[None] - 1.0
        builder = Builder(arrays)
        logits = builder.head(builder.mobilenet_v2(images, output_stride), crop_size, output_stride)
        logits = tf.identity(resize_bilinear(logits, [crop_size, crop_size]), name='ResizedLogits')
        predictions = tf.argmax(logits, 3)
        tf.identity(tf.slice(predictions, [0, 0, 0], [1, image_size[0], image_size[1]]), name='SemanticPredictions')
    return graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('variables')
    parser.add_argument('images')
    parser.add_argument('out_dir')
    parser.add_argument('--output-stride', type=int, required=True)
    parser.add_argument('--crop-size', type=int, required=True)
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tf.compat.v1.disable_resource_variables()  # TF1's VariableV2, as the 2018 exporter froze
    with np.load(args.variables) as arrays:
        graph = build_inference_graph(arrays, args.crop_size, args.output_stride)
    with tf.compat.v1.Session(graph=graph) as session:
        session.run(tf.compat.v1.global_variables_initializer())
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
            session, graph.as_graph_def(), ['SemanticPredictions', 'ResizedLogits'])
    (out / 'frozen_inference_graph.pb').write_bytes(frozen.SerializeToString())

    run_graph = tf.Graph()
    with run_graph.as_default():
        tf.compat.v1.import_graph_def(frozen, name='')
    logits, semantic = [], []
    start = time.perf_counter()
    with tf.compat.v1.Session(graph=run_graph) as session, np.load(args.images) as images:
        names = images.files
        for name in names:
            values = session.run(['ResizedLogits:0', 'SemanticPredictions:0'], {'ImageTensor:0': images[name][None]})
            logits.append(values[0][0])
            semantic.append(values[1][0])
    seconds = time.perf_counter() - start
    np.savez(out / 'outputs.npz', logits=np.stack(logits), semantic=np.stack(semantic))
    (out / 'run.json').write_text(json.dumps({
        'tensorflow': tf.__version__, 'images': names, 'seconds': seconds,
        'ops': sorted({node.op for node in frozen.node}),
        'constants': sum(node.op == 'Const' for node in frozen.node)}))


if __name__ == '__main__':
    main()
