"""The README as a newcomer uses it: its toy commands and Python example run as written on the trained toy models,
and every ``mmmnv2.<name>`` it mentions exists.

The commands are read from the README's code blocks (so the README and this test cannot drift) and run in a folder
laid out as a checkout after the main job: ``configs/`` and ``tools/`` of this repository, the session's toy data
as ``data/toyshapes_{det,seg}`` and the session's trained toy models as ``work_dirs/toy/{det,seg}``.
"""
import importlib
import json
import os
import os.path as osp
import re
import subprocess
import sys
from pathlib import Path

import pytest
from toy_runs import REPO

README = Path(REPO) / 'README.md'


def code_block(section: str, language: str) -> str:
    """The first ``language`` code block after the heading ``## section``."""
    text = README.read_text(encoding='utf-8')
    start = text.index(f'\n## {section}\n')
    match = re.compile(rf'```{language}\n(.*?)```', re.S).search(text, start)
    assert match, f'no {language} block in README section {section!r}'
    return match.group(1)


@pytest.fixture
def checkout(tmp_path, det_toy_data, seg_toy_data, trained_detector, trained_segmentor) -> Path:
    for name in ('configs', 'tools'):
        (tmp_path / name).symlink_to(osp.join(REPO, name))
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'toyshapes_det').symlink_to(det_toy_data)
    (tmp_path / 'data' / 'toyshapes_seg').symlink_to(seg_toy_data)
    (tmp_path / 'work_dirs' / 'toy').mkdir(parents=True)
    (tmp_path / 'work_dirs' / 'toy' / 'det').symlink_to(trained_detector)
    (tmp_path / 'work_dirs' / 'toy' / 'seg').symlink_to(trained_segmentor)
    # `python` in the README is this interpreter
    (tmp_path / 'bin').mkdir()
    python = tmp_path / 'bin' / 'python'  # a wrapper: a symlinked interpreter would not find its virtual environment
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    return tmp_path


def test_readme_toy_commands_run_as_written(checkout):
    script = code_block('Every tool on the toy models', 'bash')
    env = dict(os.environ, OMP_NUM_THREADS='1', PATH=f'{checkout / "bin"}:{os.environ["PATH"]}',
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get('PYTHONPATH')])))
    result = subprocess.run(['bash', '-euo', 'pipefail', '-c', script], cwd=checkout, env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    out = checkout / 'outputs'
    for exported in ('ssdlite_toy.onnx', 'deeplab_toy.onnx', 'ssdlite_toy.pte', 'deeplab_toy.tflite'):
        assert (out / exported).stat().st_size > 1e6
    for folder in ('test_onnx', 'test_pte'):  # the trained toy, through ONNX Runtime and ExecuTorch
        metrics = [json.loads(p.read_text()) for p in out.glob(f'{folder}/*/*.json')]
        assert metrics and metrics[0]['coco/bbox_mAP_50'] >= 0.5, folder
    assert len(list((out / 'seg_tflite' / 'vis').iterdir())) == 32  # LiteRT
    assert len(list((out / 'det' / 'vis').iterdir())) == 32 and len(list((out / 'det' / 'preds').iterdir())) == 32
    assert len(list((out / 'seg' / 'vis').iterdir())) == 32  # the segmentation set's val/ folder
    assert '32 images in' in result.stdout  # infer.py's summary
    assert 'ours/peer' in result.stdout  # the benchmark's table


def test_readme_python_example_runs_as_written(checkout, monkeypatch, capsys):
    monkeypatch.chdir(checkout)
    exec(compile(code_block('Python API', 'python'), 'README.md', 'exec'), {})
    printed = capsys.readouterr().out
    assert 'data/toyshapes_det/val/000000.jpg' in printed
    assert len(os.listdir(checkout / 'outputs' / 'api' / 'vis')) == 4
    assert len(os.listdir(checkout / 'outputs' / 'api' / 'preds')) == 4


def resolve(name: str):
    """The object a dotted ``mmmnv2...`` name means: the longest importable module, then attributes."""
    parts = name.split('.')
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module('.'.join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ModuleNotFoundError(name)


def test_architecture_names_every_folder_and_module_of_the_package():
    """The README's Architecture block lists what the checkout and the package hold: each top-level folder it
    names exists, and its ``mmmnv2/`` entries are exactly the package's modules and subpackages."""
    text = README.read_text(encoding='utf-8')
    block = re.compile(r'```\n(.*?)```', re.S).search(text, text.index('\n## Architecture\n')).group(1)
    top = re.findall(r'^([a-z0-9_]+/)', block, re.M)
    assert top[0] == 'mmmnv2/' and all(osp.isdir(osp.join(REPO, name)) for name in top), top
    listed = set(re.findall(r'^  ([a-z_]+(?:/|\.py))', block, re.M))
    package = osp.join(REPO, 'mmmnv2')
    present = {f'{name}/' if osp.isdir(osp.join(package, name)) else name for name in os.listdir(package)
               if (name.endswith('.py') and name != '__init__.py')
               or osp.isfile(osp.join(package, name, '__init__.py'))}
    assert listed == present


def test_every_mmmnv2_name_in_the_readme_exists():
    names = sorted(set(re.findall(r'\bmmmnv2(?:\.[A-Za-z_]\w*)+', README.read_text(encoding='utf-8'))))
    assert 'mmmnv2.MobileNetV2' in names and 'mmmnv2.apis.init_model' in names
    missing = []
    for name in names:
        try:
            resolve(name)
        except (ImportError, AttributeError):
            missing.append(name)
    assert not missing, f'README names what the package does not have: {missing}'


def test_every_registered_component_is_a_package_attribute():
    """``type='mmmnv2.X'`` in a config and ``mmmnv2.X`` in Python name the same class."""
    import mmmnv2
    from mmmnv2 import registry

    registries = [value for value in vars(registry).values() if type(value).__name__ == 'Registry']
    assert len(registries) >= 4
    for reg in registries:
        for name, cls in reg.module_dict.items():
            if cls.__module__.startswith('mmmnv2.'):  # not the hosts' classes registered here too
                assert getattr(mmmnv2, name, None) is cls, f'mmmnv2.{name}'
