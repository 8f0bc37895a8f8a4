"""tools/analysis_tools/complexity.py prints the backbone beside paper Table 4 and configs beside Tables 6 and 7.

The printed figures are read back as numbers and compared with the paper's tables and with an independent rebuild's
exact counts (parameters with BN; multiply-adds = conv and linear multiply-accumulates, BN folded away).
"""
import subprocess
import sys
from pathlib import Path

import pytest
from toy_runs import REPO

SSDLITE = 'configs/ssdlite/ssdlite_mobilenetv2_8xb24-600e_coco-320x320.py'
DEEPLAB_OS16 = 'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-os16_4xb4-30k_voc12aug-512x512.py'
DEEPLAB_OS8 = 'configs/mobile_deeplabv3/mobile-deeplabv3_mobilenetv2-os8_4xb4-30k_voc12aug-512x512.py'
# Paper Table 7's MF: scales 0.5:0.25:1.75, each with and without a flip; cost by area, relative to one pass.
MF_PASSES = 2 * sum(scale ** 2 for scale in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75))


@pytest.fixture(scope='module')
def printed() -> str:
    result = subprocess.run([sys.executable, 'tools/analysis_tools/complexity.py', SSDLITE, DEEPLAB_OS16, DEEPLAB_OS8,
                             '--widths', '1.0', '1.4'], cwd=REPO, capture_output=True, text=True, check=True)
    return result.stdout


def cells(line: str) -> list:
    return [cell.strip() for cell in line.strip().strip('|').split('|')]


def tables(printed: str) -> list:
    """Every Markdown table printed, as a list of {header: cell} rows."""
    found, lines = [], printed.splitlines()
    for index, line in enumerate(lines):
        if line.startswith('|') and index + 1 < len(lines) and lines[index + 1].startswith('|---'):
            header, rows = cells(line), []
            for row in lines[index + 2:]:
                if not row.startswith('|'):
                    break
                rows.append(dict(zip(header, cells(row), strict=True)))
            found.append(rows)
    return found


def number(cell: str) -> float:
    """'4,337,013' -> 4337013; '0.789B' -> 0.789e9; '2.11M' -> 2.11e6."""
    scale = {'B': 1e9, 'M': 1e6}.get(cell[-1], 1)
    return float(cell.rstrip('BM').replace(',', '')) * scale


def test_complexity_table_matches_paper_table4(printed):
    rows = {row['width']: row for row in tables(printed)[0]}
    one, wide = rows['1.0'], rows['1.4']
    assert number(one['params (paper)']) == 3.4e6 and number(one['MAdds (paper)']) == 300e6  # paper Table 4
    assert number(wide['params (paper)']) == 6.9e6 and number(wide['MAdds (paper)']) == 585e6
    assert number(one['params (ours)']) == pytest.approx(3_504_872, abs=5e3)  # printed to 0.01M
    assert number(one['MAdds (ours)']) == pytest.approx(300e6, rel=0.01)
    assert number(wide['MAdds (ours)']) == pytest.approx(585e6, rel=0.01)


def test_config_rows_match_the_papers_tables_and_exact_counts(printed):
    rows = {row['config']: row for row in tables(printed)[1]}
    assert len(rows) == 3
    ssdlite, os16, os8 = rows[Path(SSDLITE).name], rows[Path(DEEPLAB_OS16).name], rows[Path(DEEPLAB_OS8).name]
    # Paper Table 6 and the rebuild: 4,337,013 parameters, 0.789B at 320x320.
    assert (ssdlite['task'], ssdlite['input (HxW)'], ssdlite['paper']) == ('detection', '320x320', 'Table 6')
    assert number(ssdlite['params (ours)']) == 4_337_013
    assert number(ssdlite['MAdds (ours)']) == pytest.approx(0.789e9, rel=1e-3)
    assert (number(ssdlite['params (paper)']), number(ssdlite['MAdds (paper)'])) == (4.3e6, 0.8e9)
    # Paper Table 7 (no ASPP, OS 16) and the rebuild: 2,113,557 parameters, 2.604B at 512, 2.741B at 513.
    assert (os16['task'], os16['input (HxW)'], os16['paper']) == ('segmentation', '512x512', 'Table 7')
    assert number(os16['params (ours)']) == 2_113_557
    assert number(os16['MAdds (ours)']) == pytest.approx(2.604e9, rel=5e-4)
    assert number(os16['MAdds 513 (ours)']) == pytest.approx(2.741e9, rel=5e-4)
    assert (number(os16['params (paper)']), number(os16['MAdds (paper)'])) == (2.11e6, 2.75e9)
    # OS 8 + MF: the rebuild's one pass at 512 (8.565B) over the paper's MF passes; at 513 near the paper's 152.6B.
    assert number(os8['params (ours)']) == 2_113_557
    assert os8['eval'] == f'MF x{MF_PASSES:g}'
    assert number(os8['MAdds (ours)']) == pytest.approx(8.565e9 * MF_PASSES, rel=5e-4)
    assert number(os8['MAdds 513 (ours)']) == pytest.approx(152.6e9, rel=0.005)
    assert number(os8['MAdds (paper)']) == 152.6e9
