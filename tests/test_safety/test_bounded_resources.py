"""tools/infer.py's resources are bounded: an image whose header declares more pixels than the limit is refused before
it is decoded (a small crafted PNG declaring 30000x30000 used to take 11 GB), and the memory of a run does not grow
with the number of images."""
import json
import os
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest
from toy_runs import DET_CONFIG, REPO, tool_module, untrained_checkpoint

from mmmnv2.apis import ImageReadError, check_image_size


def png_header(path, width: int, height: int) -> None:
    """A PNG file that declares ``width`` x ``height`` RGB pixels and holds only a few bytes of them."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    header = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header) + chunk(b'IDAT', zlib.compress(b'\0' * 64))
                     + chunk(b'IEND', b''))


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return untrained_checkpoint(DET_CONFIG, str(tmp_path_factory.mktemp('resources') / 'det.pth'))


def test_image_over_the_pixel_limit_is_refused_before_decoding(monkeypatch, tmp_path, checkpoint):
    inputs = tmp_path / 'inputs'
    inputs.mkdir()
    png_header(inputs / 'bomb.png', 30000, 30000)
    png_header(inputs / 'large.png', 12000, 10000)  # 120 MP: under PIL's own limit, over ours
    cv2.imwrite(str(inputs / 'fine.png'), np.full((32, 48, 3), 90, np.uint8))
    decoded = []
    real_imread = cv2.imread
    monkeypatch.setattr(cv2, 'imread', lambda path, *a: decoded.append(path) or real_imread(path, *a))
    infer = tool_module('infer.py')
    with pytest.raises(SystemExit) as stop:
        infer.main([DET_CONFIG, checkpoint, str(inputs), '--out-dir', str(tmp_path / 'out')])
    assert '2 of 3 images were skipped' in str(stop.value.code)
    records = {os.path.basename(r['image']): r for r in
               json.loads((tmp_path / 'out' / 'manifest.json').read_text())['images']}
    assert records['fine.png']['status'] == 'ok'
    assert 'declares 12000x10000 pixels (120 MP), more than the limit of 100 MP' in records['large.png']['error']
    assert 'not decoded' in records['bomb.png']['error']
    assert not any('bomb' in str(path) or 'large' in str(path) for path in decoded)
    # The limit is a setting.
    with pytest.raises(ImageReadError, match='more than the limit of 0.001 MP'):
        check_image_size(str(inputs / 'fine.png'), max_pixels=1000)
    check_image_size(str(inputs / 'large.png'), max_pixels=200_000_000)


# The child reports its own high-water mark (VmHWM, reset by exec): the kernel's ru_maxrss of a child also counts
# the test process's memory it was forked from.
MEASURED_RUN = """
import atexit, runpy, sys
report_file, sys.argv = sys.argv[1], sys.argv[2:]
def report():
    with open('/proc/self/status') as status, open(report_file, 'w') as out:
        out.write(status.read().split('VmHWM:')[1].split()[0])
atexit.register(report)
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def peak_rss_kb(checkpoint: str, images: str, out_dir: str) -> int:
    """Peak resident memory of ``python tools/infer.py`` on ``images`` (kB)."""
    subprocess.run([sys.executable, '-c', MEASURED_RUN, f'{out_dir}.rss', 'tools/infer.py', DET_CONFIG, checkpoint,
                    images, '--out-dir', out_dir, '--device', 'cpu'], cwd=REPO, check=True,
                   env=dict(os.environ, OMP_NUM_THREADS='1'), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(f'{out_dir}.rss') as f:
        return int(f.read())


def test_infer_memory_does_not_grow_with_the_number_of_images(tmp_path, checkpoint):
    rng = np.random.default_rng(0)
    for count in (30, 300):
        folder = tmp_path / f'images_{count}'
        folder.mkdir()
        for i in range(count):
            cv2.imwrite(str(folder / f'{i:04d}.jpg'), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    few = peak_rss_kb(checkpoint, str(tmp_path / 'images_30'), str(tmp_path / 'out_30'))
    many = peak_rss_kb(checkpoint, str(tmp_path / 'images_300'), str(tmp_path / 'out_300'))
    assert len(os.listdir(tmp_path / 'out_300' / 'vis')) == 300
    print(f'infer.py peak RSS: {few} kB over 30 images, {many} kB over 300')
    assert many <= 1.05 * few, f'peak RSS {few} kB after 30 images, {many} kB after 300'
