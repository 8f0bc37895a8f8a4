"""tools/analysis_tools/complexity.py prints the backbone's figures beside paper Table 4."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_complexity_table_matches_paper_table4():
    result = subprocess.run([sys.executable, 'tools/analysis_tools/complexity.py', '--widths', '1.0', '1.4'],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    rows = {line.split('|')[1].strip(): [c.strip() for c in line.split('|')[2:6]]
            for line in result.stdout.splitlines() if line.startswith('| 1')}
    params, paper_params, macs, paper_macs = rows['1.0']
    assert (paper_params, paper_macs) == ('3.40M', '300.00M')
    assert params == '3.50M'  # 3,504,872 with the classifier, BN included
    assert abs(float(macs.rstrip('M')) - 300) / 300 < 0.01
    assert rows['1.4'][3] == '585.00M' and abs(float(rows['1.4'][2].rstrip('M')) - 585) / 585 < 0.01
