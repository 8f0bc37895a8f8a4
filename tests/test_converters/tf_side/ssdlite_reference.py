"""Google's SSDLite inference graph (TF Object Detection API export) run in TensorFlow: the reference of the tests.

Runs in the TensorFlow environment of ``tools/misc/setup_tf_venv.sh`` (TensorFlow conflicts with the OpenMMLab
stack), not in the project's. Given Google's ``model.ckpt.meta`` it

1. gives every variable of the graph a seeded random value: conv kernels scaled by fan-in, batch norm statistics and
   affine parameters randomised, class-predictor biases chosen so that sigmoid scores spread over (0, 1) instead of
   saturating; the columns of the ten COCO ids without a category (12, 26, 29, ...) get a bias of -40, as a trained
   model never scores them (their scores then stay below the graph's 1e-8 threshold);
2. writes them as a TF1 checkpoint with the graph's own saver (``model.ckpt.index`` / ``.data-00000-of-00001``) and as
   a frozen inference graph (``frozen_inference_graph.pb``) with ``convert_variables_to_constants``, as the Object
   Detection API's exporter does;
3. runs the graph on every image of a folder of ``.npy`` RGB uint8 arrays and writes, per image, the anchors
   (``Concatenate/concat``), raw box encodings (``concat``), class logits (``concat_1``) and the final detections
   (``detection_boxes`` / ``scores`` / ``classes``, ``num_detections``) to ``outputs.npz``, plus ``run.json`` (timing,
   the frozen graph's largest difference from the checkpoint graph on the first image).

    python ssdlite_reference.py META IMAGES_DIR OUT_DIR [--seed N]
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

OUTPUTS = ['detection_boxes', 'detection_scores', 'detection_classes', 'num_detections']
RAW = {'anchors': 'Concatenate/concat:0', 'box_encodings': 'concat:0', 'class_logits': 'concat_1:0'}
NUM_COCO_COLUMNS = 91  # background + COCO ids 1..90
COCO_IDS_WITHOUT_CATEGORY = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)


def random_value(name: str, shape, rng: np.random.Generator) -> np.ndarray:
    leaf = name.rsplit('/', 1)[-1]
    if leaf == 'global_step':
        return np.array(0, np.int64)
    if leaf in ('weights', 'depthwise_weights'):
        fan_in = shape[0] * shape[1] * (1 if leaf == 'depthwise_weights' else shape[2])
        # He's gain keeps the image's signal alive through the 50 random layers; the predictors' gains bring the
        # logits to a spread of about 1.5 around the bias (scores well inside (0, 1), many classes detected) and
        # the box encodings to about 1
        gain = {'ClassPredictor': 0.8, 'BoxEncodingPredictor': 0.5}.get(name.split('/')[-2], np.sqrt(2.0))
        return rng.normal(0, gain * np.sqrt(1.0 / fan_in), shape).astype(np.float32)
    if leaf == 'gamma':
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if leaf in ('beta', 'moving_mean'):
        return rng.normal(0, 0.05, shape).astype(np.float32)
    if leaf == 'moving_variance':
        return rng.uniform(0.3, 2.0, shape).astype(np.float32)
    if leaf == 'biases' and name.endswith('ClassPredictor/biases'):
        bias = rng.normal(-3.0, 0.1, (shape[0] // NUM_COCO_COLUMNS, NUM_COCO_COLUMNS))
        bias[:, list(COCO_IDS_WITHOUT_CATEGORY)] = -40.0
        return bias.reshape(shape).astype(np.float32)
    if leaf == 'biases':
        return rng.normal(0, 0.3, shape).astype(np.float32)
    raise ValueError(f'a variable this script does not know how to fill: {name} {shape}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('meta')
    parser.add_argument('images')
    parser.add_argument('out')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    graph = tf.Graph()
    with graph.as_default():
        saver = tf.compat.v1.train.import_meta_graph(args.meta, clear_devices=True)
        variables = [op for op in graph.get_operations() if op.type in ('VariableV2', 'Variable')]
        assigns, feeds = [], {}
        for op in sorted(variables, key=lambda op: op.name):
            shape = op.outputs[0].shape.as_list()
            value = random_value(op.name, shape, rng)
            holder = tf.compat.v1.placeholder(op.outputs[0].dtype.base_dtype, shape)
            assigns.append(tf.compat.v1.assign(op.outputs[0], holder))
            feeds[holder] = value
    with tf.compat.v1.Session(graph=graph) as session:
        session.run(assigns, feeds)
        (out / 'checkpoint').mkdir(exist_ok=True)
        saver.save(session, str(out / 'checkpoint' / 'model.ckpt'), write_meta_graph=False, write_state=False)
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), OUTPUTS)
        (out / 'frozen_inference_graph.pb').write_bytes(frozen.SerializeToString())
        fetches = {name: graph.get_tensor_by_name(f'{name}:0') for name in OUTPUTS}
        fetches.update({key: graph.get_tensor_by_name(name) for key, name in RAW.items()})
        image_input = graph.get_tensor_by_name('image_tensor:0')
        images = sorted(Path(args.images).glob('*.npy'))
        results = {key: [] for key in fetches}
        start = time.perf_counter()
        for path in images:
            values = session.run(fetches, {image_input: np.load(path)[None]})
            for key, value in values.items():
                results[key].append(value[0] if key != 'anchors' else value)
        seconds = time.perf_counter() - start
    frozen_graph = tf.Graph()
    with frozen_graph.as_default():
        tf.compat.v1.import_graph_def(frozen, name='')
    with tf.compat.v1.Session(graph=frozen_graph) as session:
        first = session.run({name: f'{name}:0' for name in OUTPUTS} | {'class_logits': RAW['class_logits']},
                            {'image_tensor:0': np.load(images[0])[None]})
    frozen_difference = max(float(np.abs(first[key][0] - results[key][0]).max()) for key in first)
    np.savez(out / 'outputs.npz', names=np.array([path.stem for path in images]),
             anchors=results['anchors'][0], **{key: np.stack(results[key]) for key in results if key != 'anchors'})
    (out / 'run.json').write_text(json.dumps(dict(
        images=len(images), seconds=seconds, variables=len(variables), frozen_difference=frozen_difference,
        tensorflow=tf.__version__, seed=args.seed), indent=1))


if __name__ == '__main__':
    main()
