"""
``make demo`` in small: player, node and recorder processes over real DDS, then the pictures.

The demo's own built-in sequence (scikit-image photos) has a known cut-out, so the test
can check that the recorded masks really follow it, not only that files exist.
"""

import os
import subprocess
import sys

import cv2
from matte_ros import demo
import pytest

FRAMES = 36


@pytest.fixture(scope='module')
def demo_out(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('demo'))
    done = subprocess.run([sys.executable, '-m', 'matte_ros.demo', '--frames', str(FRAMES),
                           '--out', out], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return out, done.stdout


def test_demo_prints_where_the_results_are(demo_out):
    out, stdout = demo_out
    assert 'contact sheet: %s' % os.path.join(out, 'contact_sheet.png') in stdout
    assert 'frames through /demo/matte (bgsub)' in stdout


def test_demo_writes_frames_videos_and_contact_sheet(demo_out):
    out, _ = demo_out
    counts = {s: len(os.listdir(os.path.join(out, 'frames', s))) for s in demo.STREAMS}
    assert counts['mask'] >= FRAMES // 2, counts
    assert counts['mask'] == counts['alpha'] == counts['composite'], counts
    for stream in ('mask', 'alpha', 'composite'):
        video = cv2.VideoCapture(os.path.join(out, stream + '.mp4'))
        ok, frame = video.read()
        video.release()
        assert ok and frame.shape == (480, 640, 3), stream
    sheet = cv2.imread(os.path.join(out, 'contact_sheet.png'))
    assert sheet is not None and sheet.shape == (4 * 240, 4 * 320, 3)


def test_demo_masks_follow_the_moving_cutout(demo_out):
    out, _ = demo_out
    assert demo.mean_iou(out, FRAMES) > 0.9


def test_demo_shows_each_composite_mode(demo_out):
    out, stdout = demo_out
    assert 'composite modes: %s' % os.path.join(out, 'composite_modes.png') in stdout
    sheet = cv2.imread(os.path.join(out, 'composite_modes.png'))
    assert sheet is not None and sheet.shape == (len(demo.MODES) * 240, 4 * 320, 3)
    rows = [sheet[i * 240:(i + 1) * 240].astype(int) for i in range(len(demo.MODES))]
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            assert abs(rows[i] - rows[j]).mean() > 5, (demo.MODES[i], demo.MODES[j])
    # the transparent composite is a real BGRA picture whose alpha is the node's ~/alpha
    bgra = cv2.imread(os.path.join(out, 'composite_transparent.png'), cv2.IMREAD_UNCHANGED)
    assert bgra.shape == (480, 640, 4)
    alphas = [cv2.imread(os.path.join(out, 'frames', 'alpha', name), cv2.IMREAD_GRAYSCALE)
              for name in sorted(os.listdir(os.path.join(out, 'frames', 'alpha')))]
    assert any((a == bgra[:, :, 3]).all() for a in alphas)
    assert 0 < (bgra[:, :, 3] > 127).mean() < 0.9
