"""OpenMMLab's ``mim`` reads our model zoo (``model-index.yml`` and the metafiles): every config of ``configs/`` is
listed, and the paper's rows carry the paper's numbers (MobileNetV2 paper, Tables 6 and 7, typed in here).

``mim`` finds a package's ``model-index.yml`` under ``<package>/.mim/``. It looks for the package in site-packages,
where an editable install of current setuptools has no folder, so the test points it at the imported package.
"""
import glob
import os.path as osp
import warnings
from unittest import mock

import pytest

import mmmnv2

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER = {  # config name: (metric column, value)
    'ssdlite_mobilenetv2_8xb24-600e_coco-320x320': ('coco/box_ap', 22.1),  # Table 6
    'mobile-deeplabv3_mobilenetv2-os16_4xb4-30k_voc12aug-512x512': ('pascal voc 2012/miou', 75.32),  # Table 7
    'mobile-deeplabv3-aspp_mobilenetv2-os16_4xb4-30k_voc12aug-512x512': ('pascal voc 2012/miou', 75.70),
    'mobile-deeplabv3_mobilenetv2-os8_4xb4-30k_voc12aug-512x512': ('pascal voc 2012/miou', 77.33),
    'mobile-deeplabv3-aspp_mobilenetv2-os8_4xb4-30k_voc12aug-512x512': ('pascal voc 2012/miou', 78.42),
}


@pytest.fixture(scope='module')
def model_zoo():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # mim imports pkg_resources
        from mim.commands import search
        with mock.patch.object(search, 'get_installed_path', lambda package: osp.dirname(mmmnv2.__file__)):
            return search.get_model_info('mmmnv2')


def test_mim_lists_every_config(model_zoo):
    configs = sorted(osp.relpath(path, REPO) for path in glob.glob(osp.join(REPO, 'configs', '*', '*.py')))
    assert sorted(model_zoo['config']) == configs
    assert list(model_zoo.index) == [osp.splitext(osp.basename(c))[0] for c in model_zoo['config']]
    for config in model_zoo['config']:  # mim train finds them through the package's .mim folder
        assert osp.isfile(osp.join(osp.dirname(mmmnv2.__file__), '.mim', config))
    assert osp.isfile(osp.join(osp.dirname(mmmnv2.__file__), '.mim', 'tools', 'train.py'))


def test_paper_numbers_beside_the_paper_configs(model_zoo):
    for name, (column, value) in PAPER.items():
        assert float(model_zoo.loc[name, column]) == pytest.approx(value), name
