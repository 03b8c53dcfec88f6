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
