"""The tool runs on the trained toy models that several end-to-end tests check, made once per session.

Each task's runs share one Python process (``toy_runs.run_tools_in_one_process``): on two cores, starting Python
with torch and the hosts costs several seconds a run. Each test checks its own run's exit status and output.
"""
import os.path as osp
from typing import Dict

import pytest
from toy_runs import (
    DET_CONFIG,
    SEG_CONFIG,
    SEG_MAX_ITERS,
    ToolRun,
    det_data_options,
    run_tools_in_one_process,
    seg_data_options,
    untrained_checkpoint,
)


def host_test_tool(package) -> str:
    """The host's own ``tools/test.py`` (shipped inside the installed mmdet / mmseg package)."""
    return osp.join(osp.dirname(package.__file__), '.mim', 'tools', 'test.py')


def tool_runs(config: str, checkpoint: str, options: list, work_dir: str, extra: Dict[str, list]) -> Dict[str, ToolRun]:
    """``tools/test.py`` on the config's untrained model, the export to ONNX, ``tools/test.py`` on the ONNX file in
    onnxruntime ('onnx', with ``--show-dir``) and OpenVINO ('openvino'), the export with the post-processing in the
    graph ('export_postprocessed') and ``tools/test.py`` on that file in both runtimes ('postprocessed_onnxruntime',
    'postprocessed_openvino'), plus ``extra`` (name -> [script, *args]); by name.

    Each run's work dir is ``<work_dir>/<name>`` (``toy_runs.work_dir_of``); the ONNX file is ``<work_dir>/model.onnx``.
    """
    onnx_file = osp.join(work_dir, 'model.onnx')
    postprocessed_file = osp.join(work_dir, 'postprocessed.onnx')  # the post-processing in the graph
    # --show-dir: MMDetection puts it in the run's folder, MMSegmentation takes it as given.
    show_dir = 'pictures' if config == DET_CONFIG else osp.join(work_dir, 'onnx', 'pictures')
    invocations = {
        'untrained': ['tools/test.py', config, untrained_checkpoint(config, osp.join(work_dir, 'untrained.pth'))],
        'export': ['tools/deployment/pytorch2onnx.py', config, checkpoint, '--output-file', onnx_file,
                   '--dynamic-batch'],
        'onnx': ['tools/test.py', config, onnx_file, '--num-threads', '1', '--show-dir', show_dir],
        'openvino': ['tools/test.py', config, onnx_file, '--backend', 'openvino', '--num-threads', '1'],
        'export_postprocessed': ['tools/deployment/pytorch2onnx.py', config, checkpoint, '--output-file',
                                 postprocessed_file, '--postprocess'],
        **{f'postprocessed_{backend}': ['tools/test.py', config, postprocessed_file, '--backend', backend,
                                        '--num-threads', '1'] for backend in ('onnxruntime', 'openvino')},
        **extra,
    }
    for name, args in invocations.items():
        if not name.startswith('export'):
            args += ['--work-dir', osp.join(work_dir, name), '--cfg-options', *options]
    return dict(zip(invocations, run_tools_in_one_process(list(invocations.values())), strict=True))


@pytest.fixture(scope='session')
def det_tool_runs(trained_detector, det_toy_data, tmp_path_factory) -> Dict[str, ToolRun]:
    """The trained toy SSDLite through the tools: 'test' (``--out predictions.pkl --show-dir pictures``),
    'host_test' (MMDetection's own test tool), 'untrained', 'export', 'onnx' (see ``tool_runs``)."""
    import mmdet
    work_dir = str(tmp_path_factory.mktemp('det_tool_runs'))
    checkpoint = osp.join(trained_detector, 'iter_600.pth')
    extra = {'test': ['tools/test.py', DET_CONFIG, checkpoint, '--out', osp.join(work_dir, 'test', 'predictions.pkl'),
                      '--show-dir', 'pictures'],
             'host_test': [host_test_tool(mmdet), DET_CONFIG, checkpoint]}
    return tool_runs(DET_CONFIG, checkpoint, det_data_options(det_toy_data), work_dir, extra)


@pytest.fixture(scope='session')
def seg_tool_runs(trained_segmentor, seg_toy_data, tmp_path_factory) -> Dict[str, ToolRun]:
    """The trained toy Mobile DeepLabv3 through the tools: 'test' (``--out label_maps``), 'tta'
    (``--tta``), 'untrained', 'export', 'onnx' (see ``tool_runs``)."""
    work_dir = str(tmp_path_factory.mktemp('seg_tool_runs'))
    checkpoint = osp.join(trained_segmentor, f'iter_{SEG_MAX_ITERS}.pth')
    extra = {'test': ['tools/test.py', SEG_CONFIG, checkpoint, '--out', osp.join(work_dir, 'test', 'label_maps')],
             'tta': ['tools/test.py', SEG_CONFIG, checkpoint, '--tta']}
    return tool_runs(SEG_CONFIG, checkpoint, seg_data_options(seg_toy_data), work_dir, extra)
