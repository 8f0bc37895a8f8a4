"""The README's main command, end to end (slow: it trains both toy models, about 12 minutes on 2 cores)."""
import glob
import os.path as osp
import re
import subprocess

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.slow
def test_main_job_trains_and_evaluates_both_toy_models(tmp_path):
    result = subprocess.run(['bash', 'tools/run_main.sh', '--work-dir', str(tmp_path / 'work'),
                             '--data', str(tmp_path / 'data')], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert '| 1.0 | 3.50M | 3.40M |' in out  # the complexity table beside paper Table 4
    det = float(re.search(r'det: bbox mAP@0\.5 = ([0-9.]+)', out).group(1))
    seg = float(re.search(r'seg: mIoU = ([0-9.]+)', out).group(1))
    assert det >= 0.5 and seg >= 50
    for task in ('det', 'seg'):
        work_dir = osp.join(tmp_path, 'work', task)
        assert osp.exists(osp.join(work_dir, 'last_checkpoint')) and osp.exists(osp.join(work_dir, 'curves.png'))
        pictures = glob.glob(osp.join(work_dir, 'predictions', '**', '*.[jp][pn]g'), recursive=True)
        assert len(pictures) == 32, pictures  # every val image, drawn with its predictions
