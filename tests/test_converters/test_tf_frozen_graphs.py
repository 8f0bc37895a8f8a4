"""TF DeepLab's frozen graphs (``frozen_inference_graph.pb``): the variables of the paper's Table 7 Mobile DeepLabv3
(1.0, output stride 16, no ASPP) under TF DeepLab's names, frozen by real TensorFlow as its exporter freezes them
(``tf_side/freeze_variables.py``, in the TensorFlow environment of ``tools/misc/setup_tf_venv.sh``), read by our
converter without TensorFlow into the Table 7 config: every tensor the variable it came from. The backbone's values
are TF-slim's float MobileNetV2 1.0/224 variables (``../shared/data``), the head's random.

Not checked here: the graph's ``SemanticPredictions`` (only the SSD's inference graph is available to run, see
test_tf_ssdlite.py).
"""
import subprocess

import numpy as np
import torch
from google_models import (
    BN_KEYS,
    DEEPLAB_MODULES,
    OS16_CONFIG,
    ROOT,
    deeplab_table7_variables,
    slim_checkpoint_variables,
)

from mmmnv2.apis import inference, init_model


def to_torch(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, np.float32))


def test_tf_deeplab_frozen_graph_converts_into_the_table7_config(shared_data, tf_python, tf_to_openmmlab, tmp_path):
    variables = deeplab_table7_variables(slim_checkpoint_variables(shared_data), seed=2)
    np.savez(tmp_path / 'variables.npz', **variables)
    frozen = tmp_path / 'frozen_inference_graph.pb'
    result = subprocess.run([tf_python, str(ROOT / 'tests/test_converters/tf_side/freeze_variables.py'),
                             str(tmp_path / 'variables.npz'), str(frozen)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / 'mnv2_voc.pth'
    tf_to_openmmlab.main([str(frozen), str(out)])  # the config follows from the file: width 1.0 -> Table 7's
    checkpoint = torch.load(out, weights_only=True)
    state = checkpoint['state_dict']
    assert checkpoint['meta']['tf_source']['kind'] == 'frozen_graph'
    assert checkpoint['meta']['config'].endswith(OS16_CONFIG.name)
    # written out from TF's layouts by hand: HWIO -> OIHW, depthwise HW(C)(1) -> (C)(1)HW, BN as it is
    assert torch.equal(state['backbone.conv1.conv.weight'],
                       to_torch(variables['MobilenetV2/Conv/weights'].transpose(3, 2, 0, 1)))
    depthwise = variables['MobilenetV2/expanded_conv/depthwise/depthwise_weights']
    assert torch.equal(state['backbone.layer1.0.conv.0.conv.weight'], to_torch(depthwise.transpose(2, 3, 0, 1)))
    for scope, module in DEEPLAB_MODULES.items():
        kernel = variables[f'{scope}/weights']
        assert torch.equal(state[f'{module}.conv.weight'], to_torch(kernel.transpose(3, 2, 0, 1)))
        for variable, key in BN_KEYS.items():
            assert torch.equal(state[f'{module}.bn.{key}'], to_torch(variables[f'{scope}/BatchNorm/{variable}']))
    assert torch.equal(state['decode_head.conv_seg.bias'], to_torch(variables['logits/semantic/biases']))
    # init_model loads it strictly; the config's test pipeline and inference run on a real photo.
    model = init_model(str(OS16_CONFIG), str(out), device='cpu')
    [(_, sample)] = inference(model, [str(shared_data / 'images' / 'bird_segmentation.bmp')])
    assert sample.seg_logits.data.shape[0] == 21 and torch.isfinite(sample.seg_logits.data).all()
