"""The README's main command, end to end (slow: it trains both toy models, about 12 minutes on 2 cores)."""
import glob
import json
import os.path as osp
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
    with open(tmp_path / 'work' / 'results.json') as f:
        results = {row['task']: row for row in json.load(f)}
    assert results['det']['value'] >= 50 and results['seg']['value'] >= 50  # both in percent
    assert '| task | metric | ours (%) | README range (%) | verdict |' in out  # the closing table
    for task in ('det', 'seg'):
        row = results[task]
        assert row['expected'] is not None and row['verdict'] in ('OK', 'BELOW the range', 'ABOVE the range')
        work_dir = osp.join(tmp_path, 'work', task)
        assert osp.exists(osp.join(work_dir, 'last_checkpoint')) and osp.exists(osp.join(work_dir, 'curves.png'))
        pictures = glob.glob(osp.join(work_dir, 'pictures', '*.jpg'))
        assert len(pictures) == 32, pictures  # every val image: ground truth beside prediction
        assert all(osp.isfile(p) for p in row['pictures'])
    assert 'Warning' not in out + result.stderr  # known third-party deprecation notices are filtered
