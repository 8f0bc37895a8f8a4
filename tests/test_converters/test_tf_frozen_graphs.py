"""TF DeepLab's frozen graphs (``frozen_inference_graph.pb``): the variables of the paper's Table 7 Mobile DeepLabv3
(1.0, output stride 16, no ASPP) under TF DeepLab's names, frozen by real TensorFlow as its exporter freezes them
(``tf_side/freeze_variables.py``, in the TensorFlow environment of ``tools/misc/setup_tf_venv.sh``), read by our
converter without TensorFlow into the Table 7 config: every tensor the variable it came from. The backbone's values
are TF-slim's float MobileNetV2 1.0/224 variables (``../shared/data``), the head's random.

TF DeepLab's inference graph itself (``ImageTensor`` -> ``SemanticPredictions``: padding with the mean pixel, [-1, 1]
input, MobileNetV2 at the output stride, ``image_pooling`` + ``aspp0`` + ``concat_projection``, ``logits/semantic``,
logits upsampled with ``align_corners=True``, argmax) built by TensorFlow from TF DeepLab's sources
(``tf_side/deeplab_reference.py``; Google's exported DeepLab graphs are not available here), frozen with
``convert_variables_to_constants`` and run on the 4 real photos, for two layouts: the Table 7 model above (1.0, output
stride 16, 513x513) and Google's DM 0.5 output stride 8 model at 257x257 (Google's folded kernels, BN unfolded with
random statistics). The photos are resized to the graph's size once, outside both models, and fed as they are (TF's
exporter pads to its crop size and does not resize, our configs' test pipeline neither): the models see the same
pixels. The frozen graph converts with the tool; our logits (the configs' test pipeline, data preprocessor and
upsampling) within 1e-4 of TF's largest logit, our argmax equal to ``SemanticPredictions`` on >= 99.9% of each photo's
pixels.
"""
import json
import subprocess
import time

import numpy as np
import pytest
import torch
from google_models import (
    BN_KEYS,
    DEEPLAB_MODULES,
    DM05_CONFIG,
    OS16_CONFIG,
    PHOTOS,
    ROOT,
    deeplab_dm05_variables,
    deeplab_table7_variables,
    resized_photos,
    rgb,
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


# layout -> (our config, TF DeepLab's output stride, crop size)
LAYOUTS = {'table7': (OS16_CONFIG, 16, 513), 'dm05': (DM05_CONFIG, 8, 257)}


@pytest.mark.parametrize('layout', sorted(LAYOUTS))
def test_tf_deeplab_frozen_graph_matches_semantic_predictions(layout, shared_data, tf_python, tf_to_openmmlab,
                                                              tmp_path):
    config, output_stride, size = LAYOUTS[layout]
    if layout == 'table7':
        variables = deeplab_table7_variables(slim_checkpoint_variables(shared_data), seed=3)
    else:
        variables = deeplab_dm05_variables(shared_data, seed=3)
    np.savez(tmp_path / 'variables.npz', **variables)
    photos = resized_photos(shared_data, tmp_path, size)
    np.savez(tmp_path / 'images.npz', *[rgb(path) for path in photos])
    start = time.perf_counter()
    result = subprocess.run([tf_python, str(ROOT / 'tests/test_converters/tf_side/deeplab_reference.py'),
                             str(tmp_path / 'variables.npz'), str(tmp_path / 'images.npz'), str(tmp_path / 'tf'),
                             '--output-stride', str(output_stride), '--crop-size', str(size)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads((tmp_path / 'tf' / 'run.json').read_text())
    print(f'TF {run["tensorflow"]}: frozen graph of {run["constants"]} constants, ops {run["ops"]}; 4 photos in '
          f'{run["seconds"]:.1f} s, the TF side {time.perf_counter() - start:.1f} s')
    assert 'FusedBatchNorm' in run['ops'] and 'VariableV2' not in run['ops']
    with np.load(tmp_path / 'tf' / 'outputs.npz') as outputs:
        tf_logits, tf_semantic = outputs['logits'], outputs['semantic']
    assert tf_logits.shape == (len(PHOTOS), size, size, 21) and tf_semantic.shape == (len(PHOTOS), size, size)

    out = tmp_path / 'converted.pth'
    tf_to_openmmlab.main([str(tmp_path / 'tf' / 'frozen_inference_graph.pb'), str(out), '--config', str(config)])
    model = init_model(str(config), str(out), device='cpu')
    for name, (_, sample), reference, semantic in zip(PHOTOS, inference(model, photos), tf_logits, tf_semantic):
        ours = sample.seg_logits.data.numpy()  # (21, size, size), upsampled with align_corners=True
        relative = float(np.abs(ours - reference.transpose(2, 0, 1)).max() / np.abs(reference).max())
        agreement = float((sample.pred_sem_seg.data[0].numpy() == semantic).mean())
        print(f'{layout} {name}: max |diff| / max |logit| {relative:.2e}, argmax agreement with SemanticPredictions '
              f'{agreement:.4%}, TF classes {np.unique(semantic).tolist()}')
        assert relative <= 1e-4, name
        assert agreement >= 0.999, name
