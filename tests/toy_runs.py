"""Shared helpers of the tests that train the toy models through the tools users run."""
import functools
import glob
import importlib.util
import json
import os
import os.path as osp
import re
import runpy
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from mmengine.config import Config

from mmmnv2.datasets import data_root_options, generate_detection

if TYPE_CHECKING:
    import torch

TESTS = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(TESTS)
DET_CONFIG = osp.join(REPO, 'configs/ssdlite/ssdlite_mobilenetv2_1xb8-600i_toyshapes-192x192.py')
SEG_CONFIG = osp.join(REPO, 'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-os16_1xb8-300i_toyshapes-192x192.py')
SEG_MAX_ITERS = Config.fromfile(SEG_CONFIG).train_cfg.max_iters
# The short segmentation training of the resume test: "killed" after RESUME_INTERRUPTED_AT iterations, resumed to
# RESUME_MAX_ITERS.
RESUME_INTERRUPTED_AT, RESUME_MAX_ITERS = 4, 8
# What a trained toy model must reach, in points (bbox mAP@0.5 in percent, mIoU); an untrained one scores far below
# (detection ~0, segmentation ~11). The README's ranges of repeated runs lie above.
LEARNED = {'det': 50.0, 'seg': 50.0}
MAIN_JOB_WORK_DIR = osp.join(REPO, 'work_dirs', 'toy')  # where ``bash tools/run_main.sh`` puts its results


def main_job_toys(work_dir: str = MAIN_JOB_WORK_DIR) -> Dict[str, dict]:
    """task -> the main job's results row for each toy model it trained with this checkout's code and host stack
    (``results.json``'s ``code_fingerprint`` equal to ``toy_experiments.code_fingerprint()``), whose checkpoint and
    data are there; empty where the main job has not run, or ran on other code."""
    results = osp.join(work_dir, 'results.json')
    if not osp.isfile(results):
        return {}
    with open(results) as f:
        rows = json.load(f)
    fingerprint = tool_module('misc/toy_experiments.py').code_fingerprint()
    return {row['task']: row for row in rows if row.get('code_fingerprint') == fingerprint
            and osp.isfile(row.get('checkpoint_file', '')) and osp.isdir(row.get('data_root', ''))}


def tool_module(path: str):
    """The tool ``tools/<path>`` as a module (its functions, without running its ``main``)."""
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(path))[0], osp.join(REPO, 'tools', path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool(*args: str, check: bool = True, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Run a Python tool of the repository with one intra-op thread.

    The test runner itself holds threads; oversubscribed OpenMP threads spin instead of working on 2 cores.
    """
    env = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    result = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f'{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}')
    return result


# ``--cfg-options`` pointing each toy config's loaders (and detection's evaluators) at a generated data set
det_data_options = functools.partial(data_root_options, DET_CONFIG)
seg_data_options = functools.partial(data_root_options, SEG_CONFIG)


def scalars(work_dir: str, metric: str) -> Tuple[List[dict], List[dict]]:
    """(training records, records with ``metric``) of every ``vis_data/scalars.json`` in ``work_dir``, by step."""
    records = []
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            records += [json.loads(line) for line in f]
    train = sorted((r for r in records if 'loss' in r), key=lambda r: r['iter'])
    evaluated = sorted((r for r in records if metric in r), key=lambda r: r['step'])
    return train, evaluated


def reported(metric: str, output: str) -> float:
    """The last value of ``metric`` a tool logged (e.g. 'coco/bbox_mAP_50', 'mIoU')."""
    match = re.findall(rf'{re.escape(metric)}: ([0-9.]+)', output)
    assert match, output[-3000:]
    return float(match[-1])


def run_tool_in_process(monkeypatch, tool: str, args: List[str]) -> None:
    """``python tools/<tool> ARGS`` in this process (``__main__``, its own ``sys.argv``, the checkout as the
    current folder): no interpreter start, where a separate process proves nothing more. A refusal surfaces as
    SystemExit with the message."""
    monkeypatch.setattr(sys, 'argv', [f'{REPO}/tools/{tool}', *args])
    monkeypatch.chdir(REPO)
    runpy.run_path(f'{REPO}/tools/{tool}', run_name='__main__')


def untrained_checkpoint(config: str, path: str) -> str:
    """Save the config's model with its initial (untrained) weights as a checkpoint; return the path."""
    import torch

    from mmmnv2.apis import init_model
    model = init_model(config, device='cpu')
    torch.save({'state_dict': model.state_dict()}, path)
    return path


_TOOL_CHAIN = r'''
import gc, json, multiprocessing, runpy, sys, traceback
sys.path.insert(0, sys.argv[2])
import host_memo
from mmengine.visualization import Visualizer
host_memo.install()
for index, argv in enumerate(json.loads(sys.argv[1])):
    print(f'=== tool {index} starts', flush=True)
    # What the interpreter's exit does after a tool: its daemonic processes (data loader workers) terminated and
    # joined. Left alive, each would hold its loader's shutdown (in the collection below) for 5 s, the workers'
    # status-check interval.
    for child in multiprocessing.active_children():
        if child.daemon:
            child.terminate()
    for child in multiprocessing.active_children():
        child.join()
    # The earlier tools' garbage collected, what survives frozen: the collections the hosts ask for (MMEngine's
    # datasets call gc.collect() when they build) then cost what they would in a fresh process, not a pass over
    # everything this process has imported and run.
    gc.collect()
    gc.freeze()
    sys.argv = argv
    # each run builds its own visualizer, as in a fresh process (each subclass keeps its own instances)
    classes = [Visualizer]
    while classes:
        cls = classes.pop()
        cls._instance_dict.clear()
        classes += cls.__subclasses__()
    status = 0
    try:
        runpy.run_path(argv[0], run_name='__main__')
    except SystemExit as exit:  # what the interpreter would do with it
        if isinstance(exit.code, int) or exit.code is None:
            status = exit.code or 0
        else:
            print(exit.code, file=sys.stderr)
            status = 1
    except BaseException:
        traceback.print_exc()
        status = 1
    sys.stderr.flush()
    print(f'=== tool {index} exits {status}', flush=True)
'''


@dataclass
class ToolRun:
    """One tool run of ``run_tools_in_one_process``: its arguments, exit status and output (stdout and stderr)."""
    args: List[str]
    returncode: int
    output: str

    def check(self) -> str:
        """The output; AssertionError with its end if the tool failed."""
        assert self.returncode == 0, f'{self.args[:2]} failed:\n{self.output[-6000:]}'
        return self.output


class ToolChain:
    """Tools (``[script, *args]`` each) running one after the other in one Python process started in the
    background, each as ``python script args`` would (``__main__``, its own ``sys.argv``); a failing one does not
    stop the others. ``wait()`` gives their runs.

    One process saves starting Python with torch and the hosts once per tool (several seconds each on two cores).
    The tools share the process's imports: a tool that works only after another imported something is not caught
    here. The process memoizes two slow pure host functions (``host_memo``).
    """

    def __init__(self, invocations: List[List[str]]) -> None:
        self.invocations = invocations
        # a file, not a pipe: a full pipe would stop the tools while nobody reads
        self._output = tempfile.TemporaryFile(mode='w+')
        env = dict(os.environ, OMP_NUM_THREADS='1')  # see run_tool
        self._process = subprocess.Popen([sys.executable, '-u', '-c', _TOOL_CHAIN, json.dumps(invocations), TESTS],
                                         cwd=REPO, env=env, stdout=self._output, stderr=subprocess.STDOUT, text=True)

    def running(self) -> bool:
        return self._process.poll() is None

    def stop(self) -> None:
        if self.running():
            self._process.kill()
            self._process.wait()

    def wait(self, count: Optional[int] = None) -> List[ToolRun]:
        """The runs of the first ``count`` tools (all by default) once they have exited; the later tools go on."""
        count = len(self.invocations) if count is None else count
        while True:
            returncode = self._process.poll()
            # pread: the file offset is shared with the process writing to it
            size = os.fstat(self._output.fileno()).st_size
            text = os.pread(self._output.fileno(), size, 0).decode('utf-8', errors='replace')
            parts = re.split(r'^=== tool (\d+) (?:starts|exits (-?\d+))\n', text, flags=re.M)
            outputs, statuses = {}, {}
            for i in range(1, len(parts) - 1, 3):
                index, status, output = int(parts[i]), parts[i + 1], parts[i + 2]
                if status is None:
                    outputs[index] = output
                else:
                    statuses[index] = int(status)
            if returncode is not None or all(index in statuses for index in range(count)):
                break
            time.sleep(1)
        # a tool that killed the process has no exit line: the process's status is its status
        return [ToolRun(args, statuses.get(index, returncode or 1), outputs.get(index, ''))
                for index, args in enumerate(self.invocations[:count])]


def run_tools_in_one_process(invocations: List[List[str]]) -> List[ToolRun]:
    """The runs of ``ToolChain(invocations)``, once all have finished."""
    return ToolChain(invocations).wait()


def work_dir_of(run: ToolRun) -> str:
    """The ``--work-dir`` a tool run was given (where its outputs are)."""
    return run.args[run.args.index('--work-dir') + 1]


def logged_metrics(run: ToolRun) -> dict:
    """The metrics a test tool run saved (MMEngine writes ``<work dir>/<timestamp>/<timestamp>.json``)."""
    [path] = glob.glob(osp.join(work_dir_of(run), '*', '*.json'))
    with open(path) as f:
        return json.load(f)


def val_inputs(config: str, data_options: list, count: int = 8) -> 'torch.Tensor':
    """The first val images after the config's pipeline and data preprocessor: what the network sees."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS, init_default_scope

    from mmmnv2.apis import init_model
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(dict(option.split('=', 1) for option in data_options))
    init_default_scope(cfg.default_scope)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    model = init_model(cfg, device='cpu')
    return model.data_preprocessor(pseudo_collate([dataset[i] for i in range(count)]), False)['inputs']


# int8 runs of the trained toys: calibration images, and a margin no int8 model meets, so that the accuracy guard
# always takes its fallback (the sensitive layers kept in float)
CALIB_IMAGES = 32
FORCE_FALLBACK = '-1000'
# The detector's int8 runs evaluate on more images than the toy val set's 32: there, mAP@0.5 moves by more than a
# point with one or two detections (measured: fp32 78.9, int8 80.0, int8 with the fallback 77.4), and the trained
# toy differs from run to run.
INT8_DET_VAL_IMAGES = 256


def det_int8_data(root: str) -> str:
    """A toy detection set for the int8 runs: CALIB_IMAGES train images to calibrate on, INT8_DET_VAL_IMAGES val
    images, drawn with another seed than the training set's (none of them trained on)."""
    generate_detection(root, num_train=CALIB_IMAGES, num_val=INT8_DET_VAL_IMAGES, seed=1)
    return root


def host_tool(scope: str, name: str) -> str:
    """The host's own tool ``name`` ('train', 'test') of a config's default scope ('mmdet', 'mmseg'), shipped inside
    the installed package."""
    import mmdet
    import mmseg
    package = {'mmdet': mmdet, 'mmseg': mmseg}[scope]
    path = osp.join(osp.dirname(package.__file__), '.mim', 'tools', f'{name}.py')
    assert osp.exists(path), path
    return path


def toy_tool_invocations(task: str, checkpoint: str, options: list, work_dir: str,
                         int8_options: Optional[list] = None) -> Dict[str, List[str]]:
    """The tool runs on a trained toy model ('det' or 'seg') that the end-to-end tests check, by name.

    Both tasks: ``tools/test.py`` on the config's untrained model ('untrained'), the export to ONNX ('export'),
    ``tools/test.py`` on the ONNX file in onnxruntime ('onnx', with ``--show-dir``) and OpenVINO ('openvino'), the
    export with the post-processing in the graph ('export_postprocessed') and ``tools/test.py`` on that file in both
    runtimes ('postprocessed_onnxruntime', 'postprocessed_openvino'), ``tools/test.py`` on the checkpoint ('test').
    Detection: ``--out predictions.pkl --show-dir pictures`` on 'test', MMDetection's own test tool ('host_test'),
    the onnxruntime int8 quantization ('int8_onnxruntime', fallback forced; 'int8_default', default --max-drop) and
    ``tools/test.py`` on the first one's file ('int8_test'). Segmentation: ``--out label_maps`` on 'test', ``--tta``
    ('tta'), the OpenVINO (NNCF) int8 quantization ('int8_openvino', fallback forced). Image in, result out
    (``--preprocess --postprocess`` at the toy images' 256x256): exported ('export_image_<backend>') and evaluated
    ('image_<backend>'): detection as .tflite in LiteRT and .onnx in onnxruntime, segmentation as .pte in ExecuTorch.

    ``options`` point the config at the data (``--cfg-options``), ``int8_options`` (default: ``options``) the int8
    runs. Each test run's work dir is ``<work_dir>/<name>`` (``work_dir_of``); the ONNX file is
    ``<work_dir>/model.onnx``, an int8 file ``<work_dir>/<name>.onnx`` with its report ``<work_dir>/<name>.json``.
    """
    int8_options = int8_options or options
    config = DET_CONFIG if task == 'det' else SEG_CONFIG
    onnx_file = osp.join(work_dir, 'model.onnx')
    postprocessed_file = osp.join(work_dir, 'postprocessed.onnx')  # the post-processing in the graph
    # --show-dir: MMDetection puts it in the run's folder, MMSegmentation takes it as given.
    show_dir = 'pictures' if task == 'det' else osp.join(work_dir, 'onnx', 'pictures')
    tests = {
        'untrained': ['tools/test.py', config, untrained_checkpoint(config, osp.join(work_dir, 'untrained.pth'))],
        'onnx': ['tools/test.py', config, onnx_file, '--num-threads', '1', '--show-dir', show_dir],
        'openvino': ['tools/test.py', config, onnx_file, '--backend', 'openvino', '--num-threads', '1'],
        **{f'postprocessed_{backend}': ['tools/test.py', config, postprocessed_file, '--backend', backend,
                                        '--num-threads', '1'] for backend in ('onnxruntime', 'openvino')},
    }
    if task == 'det':
        # 'int8_onnxruntime' with the fallback forced; 'int8_default' as a user runs it (default --max-drop)
        int8 = {'int8_onnxruntime': 'onnxruntime', 'int8_default': 'onnxruntime'}
        tests.update(test=['tools/test.py', config, checkpoint, '--out',
                           osp.join(work_dir, 'test', 'predictions.pkl'), '--show-dir', 'pictures'],
                     host_test=[host_tool('mmdet', 'test'), config, checkpoint],
                     int8_test=['tools/test.py', config, osp.join(work_dir, 'int8_onnxruntime.onnx'),
                                '--num-threads', '1'])
    else:
        int8 = {'int8_openvino': 'openvino'}
        tests.update(test=['tools/test.py', config, checkpoint, '--out', osp.join(work_dir, 'test', 'label_maps')],
                     tta=['tools/test.py', config, checkpoint, '--tta'])
    for name, args in tests.items():
        args += ['--work-dir', osp.join(work_dir, name), '--cfg-options',
                 *(int8_options if name.startswith('int8') else options)]
    quantizations = {
        name: ['tools/deployment/quantize.py', config, onnx_file, '--out', osp.join(work_dir, f'{name}.onnx'),
               '--backend', backend, '--calib-images', str(CALIB_IMAGES),
               *([] if name == 'int8_default' else ['--max-drop', FORCE_FALLBACK]),
               '--num-threads', '1', '--cfg-options', *int8_options] for name, backend in int8.items()}
    # image in, result out (--preprocess --postprocess) at the toy images' size: detection in LiteRT and ONNX
    # Runtime, segmentation in ExecuTorch
    image_files = ({'litert': osp.join(work_dir, 'image.tflite'), 'onnxruntime': osp.join(work_dir, 'image.onnx')}
                   if task == 'det' else {'executorch': osp.join(work_dir, 'image.pte')})
    image_options = ['--preprocess', '--postprocess', '--image-size', '256', '256']
    for backend, image_file in image_files.items():
        tests[f'image_{backend}'] = ['tools/test.py', config, image_file, '--num-threads', '1',
                                     '--work-dir', osp.join(work_dir, f'image_{backend}'), '--cfg-options', *options]
    exports = {'export': ['tools/deployment/pytorch2onnx.py', config, checkpoint, '--output-file', onnx_file,
                          '--dynamic-batch'],
               **{f'export_image_{backend}': (
                   ['tools/deployment/pytorch2onnx.py', config, checkpoint, '--output-file', image_file]
                   if backend == 'onnxruntime' else
                   ['tools/deployment/export_mobile.py', config, checkpoint, '--format',
                    'tflite' if backend == 'litert' else 'executorch', '--out', image_file]) + image_options
                  for backend, image_file in image_files.items()},
               'export_postprocessed': ['tools/deployment/pytorch2onnx.py', config, checkpoint, '--output-file',
                                        postprocessed_file, '--postprocess']}
    # in an order each run finds the files it reads
    order = ['test', 'host_test', 'untrained', 'tta', 'export', 'onnx', 'openvino', 'export_postprocessed',
             'postprocessed_onnxruntime', 'postprocessed_openvino', *int8, 'int8_test',
             *(name for backend in image_files for name in (f'export_image_{backend}', f'image_{backend}'))]
    invocations = {**tests, **quantizations, **exports}
    return {name: invocations[name] for name in order if name in invocations}
