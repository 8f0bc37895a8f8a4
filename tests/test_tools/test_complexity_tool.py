"""tools/analysis_tools/complexity.py prints the backbone beside paper Table 4 and configs beside Tables 6 and 7."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SSDLITE = 'configs/ssdlite/ssdlite_mobilenetv2_8xb24-600e_coco-320x320.py'
DEEPLAB_OS16 = 'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-os16_4xb4-30k_voc12aug-512x512.py'
DEEPLAB_OS8 = 'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-os8_4xb4-30k_voc12aug-512x512.py'


@pytest.fixture(scope='module')
def printed() -> str:
    result = subprocess.run([sys.executable, 'tools/analysis_tools/complexity.py', SSDLITE, DEEPLAB_OS16, DEEPLAB_OS8,
                             '--widths', '1.0', '1.4'], cwd=ROOT, capture_output=True, text=True, check=True)
    return result.stdout


def cells(line: str) -> list:
    return [cell.strip() for cell in line.strip().strip('|').split('|')]


def test_complexity_table_matches_paper_table4(printed):
    rows = {cells(line)[0]: cells(line)[1:5] for line in printed.splitlines() if line.startswith('| 1')}
    params, paper_params, macs, paper_macs = rows['1.0']
    assert (paper_params, paper_macs) == ('3.40M', '300.00M')
    assert params == '3.50M'  # 3,504,872 with the classifier, BN included
    assert abs(float(macs.rstrip('M')) - 300) / 300 < 0.01
    assert rows['1.4'][3] == '585.00M' and abs(float(rows['1.4'][2].rstrip('M')) - 585) / 585 < 0.01


def test_config_rows_match_pinned_counts_and_papers_tables(printed):
    header, *lines = [line for line in printed.splitlines() if '.py |' in line or line.startswith('| config')]
    assert cells(header) == ['config', 'task', 'input (HxW)', 'eval', 'params (ours)', 'params (paper)',
                             'MAdds (ours)', 'MAdds 513 (ours)', 'MAdds (paper)', 'paper']
    rows = {row[0]: row[1:] for row in map(cells, lines)}
    assert len(rows) == 3
    # Pinned: tests/test_models/test_ssdlite.py, test_mobile_deeplabv3.py and REFERENCE §2-3.
    assert rows[Path(SSDLITE).name] == ['detection', '320x320', 'single', '4,337,013', '4.3M', '0.789B', '-', '0.8B',
                                        'Table 6']
    assert rows[Path(DEEPLAB_OS16).name] == ['segmentation', '512x512', 'single', '2,113,557', '2.11M', '2.604B',
                                             '2.741B', '2.75B', 'Table 7']
    # OS 8 + MF: one pass x 17.375 (6 scales, 2 flips); at TF's 513 crop within 0.5% of the paper's 152.6B
    assert rows[Path(DEEPLAB_OS8).name] == ['segmentation', '512x512', 'MF x17.375', '2,113,557', '2.11M',
                                            '148.815B', '153.349B', '152.6B', 'Table 7']
