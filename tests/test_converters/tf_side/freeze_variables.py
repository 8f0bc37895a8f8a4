"""A frozen graph of given variables, written by TensorFlow as TF's exporters write one (TF DeepLab's
``export_model.py``, the Object Detection API's exporter): TF1 variables (``VariableV2`` with their ``<name>/read``
ops) in a graph whose output reads every one of them, turned into constants by ``convert_variables_to_constants``.

Runs in the TensorFlow environment of ``tools/misc/setup_tf_venv.sh``.

    python freeze_variables.py VARIABLES.npz OUT.pb
"""
import sys

import numpy as np
import tensorflow as tf


def main() -> None:
    variables_file, out = sys.argv[1:3]
    tf.compat.v1.disable_resource_variables()  # TF1's VariableV2, as the 2018 exporters froze
    graph = tf.Graph()
    with graph.as_default():
        with np.load(variables_file) as arrays:
            variables = [tf.compat.v1.Variable(arrays[name], name=name) for name in arrays.files]
        tf.add_n([tf.reduce_sum(variable) for variable in variables], name='output')
    with tf.compat.v1.Session(graph=graph) as session:
        session.run(tf.compat.v1.global_variables_initializer())
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), ['output'])
    with open(out, 'wb') as file:
        file.write(frozen.SerializeToString())


if __name__ == '__main__':
    main()
