"""
``make demo``: the whole product end to end on one machine.

A player process publishes a sequence (by default a real photo from scikit-image
moving over another one; or ``--source`` a video, a folder or a camera), the
``matte`` node processes it in its own process over DDS, and a recorder process
writes what the node published.  Then the three output streams are written as MP4
and a contact sheet PNG shows input, mask, alpha and composite side by side; a second
sheet shows each ``composite.mode`` (blur, color, image, transparent over a
checkerboard), made by the core's compositor from the recorded input and ``~/alpha``.
"""

import argparse
import glob
import json
import os
import sys
import time

import cv2
from matte_ros import compositing
from matte_ros import params as schema
from matte_ros.measure import demo_sequence
from matte_ros.measure import processes
import numpy as np

STREAMS = ('input', 'mask', 'alpha', 'composite')
#: Rows of the composite-mode sheet (``none`` publishes nothing to show).
MODES = ('blur', 'color', 'image', 'transparent')
TILE = (320, 240)
NAMESPACE = '/demo'


def _module(name, *args):
    return [sys.executable, '-m', name] + [str(a) for a in args]


def _wait_for_file(path: str, proc, timeout: float) -> None:
    """Wait until ``path`` exists (the recorder's sign that it sees the node's outputs)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if not proc.alive() or time.monotonic() > deadline:
            raise RuntimeError('the recorder did not get ready; see %s' % proc.log_path)
        time.sleep(0.05)


def run_graph(args, out: str) -> dict:
    """Start node, recorder and player; configure and activate the node; wait for the end."""
    env = processes.isolated_env()
    os.environ.update(env)
    import rclpy
    from matte_ros.ros.lifecycle_client import LifecycleClient
    logs = os.path.join(out, 'logs')
    os.makedirs(logs, exist_ok=True)
    params = {'segmenter': args.segmenter}
    for item in args.param:
        key, value = item.split('=', 1)
        params[key] = value
    node = processes.ManagedProcess(
        processes.node_command(namespace=NAMESPACE, params=params), env,
        os.path.join(logs, 'node.log'))
    recorder = player = None
    ready = os.path.join(logs, 'recorder.ready')
    if os.path.exists(ready):
        os.remove(ready)
    rclpy.init()
    client = rclpy.create_node('matte_demo')
    try:
        lifecycle = LifecycleClient(client, NAMESPACE + '/matte', timeout=60.0)
        if not lifecycle.change_state('configure'):
            raise RuntimeError('the node refused to configure; see %s' % node.log_path)
        if not lifecycle.change_state('activate'):
            raise RuntimeError('the node refused to activate; see %s' % node.log_path)
        recorder = processes.ManagedProcess(
            _module('matte_ros.measure.recorder', '--node', NAMESPACE + '/matte', '--input',
                    NAMESPACE + '/image', '--out', os.path.join(out, 'frames'),
                    '--count', 0, '--idle', 5.0,  # the player's priming frames add a few
                    '--ready-file', ready),
            env, os.path.join(logs, 'recorder.log'))
        _wait_for_file(ready, recorder, 60.0)
        player = processes.ManagedProcess(
            _module('matte_ros.measure.player', '--source', args.source, '--topic',
                    NAMESPACE + '/image', '--rate', args.rate, '--count', args.frames,
                    '--wait-subscribers', 2, '--prime-until', NAMESPACE + '/matte/mask'),
            env, os.path.join(logs, 'player.log'))
        player.proc.wait(timeout=args.frames / max(args.rate, 0.1) + 120)
        recorder.proc.wait(timeout=120)
    finally:
        for proc in (player, recorder):
            if proc is not None:
                proc.stop()
        node.stop()
        client.destroy_node()
        rclpy.try_shutdown()
    with open(os.path.join(out, 'frames', 'latency_ms.json')) as f:
        return json.load(f)


def write_videos(out: str, fps: float) -> list:
    """Write one MP4 per stream from the recorded PNGs; return their paths."""
    written = []
    for stream in STREAMS:
        files = sorted(glob.glob(os.path.join(out, 'frames', stream, '*.png')))
        if not files:
            continue
        first = cv2.imread(files[0])
        path = os.path.join(out, stream + '.mp4')
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                                 (first.shape[1], first.shape[0]))
        for name in files:
            writer.write(cv2.imread(name))
        writer.release()
        written.append(path)
    return written


def _picks(out: str, columns: int) -> list:
    """Return ``columns`` recorded stamps from the middle of the sequence."""
    stamps = sorted(os.path.basename(p)[:-4] for p in glob.glob(
        os.path.join(out, 'frames', 'composite', '*.png')))
    if not stamps:
        raise RuntimeError('no composite frames were recorded')
    # the built-in sequence starts and ends on the empty scene: show the middle
    return [stamps[int(i)] for i in np.linspace(0.25 * (len(stamps) - 1),
                                                0.9 * (len(stamps) - 1), columns)]


def _tile(image: np.ndarray, label: str) -> np.ndarray:
    tile = cv2.resize(image, TILE, interpolation=cv2.INTER_AREA)
    cv2.putText(tile, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 255), 2)
    return tile


def contact_sheet(out: str, columns: int = 4) -> str:
    """Write a grid: one row per stream, ``columns`` frames from the middle of the sequence."""
    picks = _picks(out, columns)
    rows = []
    for stream in STREAMS:
        tiles = []
        for stamp in picks:
            tile = cv2.imread(os.path.join(out, 'frames', stream, stamp + '.png'))
            if tile is None:
                tile = np.zeros((TILE[1], TILE[0], 3), np.uint8)
            tiles.append(_tile(tile, stream))
        rows.append(np.hstack(tiles))
    path = os.path.join(out, 'contact_sheet.png')
    cv2.imwrite(path, np.vstack(rows))
    return path


def checkerboard(height: int, width: int, square: int = 16) -> np.ndarray:
    """Return the grey checkerboard viewers draw behind transparent pixels (BGR)."""
    yy, xx = np.mgrid[0:height, 0:width]
    light = ((yy // square + xx // square) % 2).astype(bool)
    board = np.full((height, width, 3), 102, np.uint8)
    board[light] = 153
    return board


def over_checkerboard(bgra: np.ndarray) -> np.ndarray:
    """Return a BGRA image drawn over a checkerboard, as a viewer shows it."""
    a = bgra[:, :, 3].astype(np.float32) / 255.0
    board = checkerboard(*bgra.shape[:2])
    return cv2.blendLinear(np.ascontiguousarray(bgra[:, :, :3]), board, a, 1.0 - a)


def modes_sheet(out: str, columns: int = 4) -> str:
    """
    Write ``composite_modes.png``: one row per composite mode, the contact sheet's frames.

    Each tile is the core's :class:`~matte_ros.compositing.Compositor` applied to a
    recorded input frame and the ``~/alpha`` the node published for it (mode image
    uses scikit-image's ``chelsea`` photo; transparent is drawn over a checkerboard).
    The first transparent composite is also kept as a BGRA PNG,
    ``composite_transparent.png``.
    """
    from skimage import data
    picture = os.path.join(out, 'background_chelsea.png')
    cv2.imwrite(picture, cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR))
    picks = _picks(out, columns)
    rows = []
    for mode in MODES:
        values = schema.defaults()
        values.update({'composite.mode': mode, 'composite.image_path': picture})
        compositor = compositing.Compositor(values)
        tiles = []
        for stamp in picks:
            frame = cv2.imread(os.path.join(out, 'frames', 'input', stamp + '.png'))
            alpha = cv2.imread(os.path.join(out, 'frames', 'alpha', stamp + '.png'),
                               cv2.IMREAD_GRAYSCALE)
            if frame is None or alpha is None or alpha.shape != frame.shape[:2]:
                tiles.append(np.zeros((TILE[1], TILE[0], 3), np.uint8))
                continue
            composite = compositor.composite(frame, alpha)
            if mode == 'transparent':
                if len(tiles) == 0:
                    cv2.imwrite(os.path.join(out, 'composite_transparent.png'), composite)
                composite = over_checkerboard(composite)
            tiles.append(_tile(composite, mode))
        rows.append(np.hstack(tiles))
    path = os.path.join(out, 'composite_modes.png')
    cv2.imwrite(path, np.vstack(rows))
    return path


def mean_iou(out: str, count: int) -> float:
    """Score the recorded masks against the built-in truth, on frames showing the cut-out."""
    truths = [t for _, _, t in demo_sequence.frames(count)]
    frames = [f for _, f, _ in demo_sequence.frames(count)]
    scores = []
    for path in sorted(glob.glob(os.path.join(out, 'frames', 'mask', '*.png'))):
        # pair by stamp: the node may have dropped frames the recorder saw on the input
        shown = cv2.imread(path.replace(os.sep + 'mask' + os.sep, os.sep + 'input' + os.sep))
        if shown is None:
            continue
        mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        # find which frame of the sequence this recording shows (frames may be dropped)
        index = int(np.argmin([np.abs(shown.astype(np.int16) - f).mean() for f in frames]))
        truth = truths[index] > 0
        if not truth.any():
            continue   # empty scene: IoU is undefined there
        pred = mask > 127
        scores.append(np.logical_and(truth, pred).sum() / np.logical_or(truth, pred).sum())
    return float(np.mean(scores)) if scores else float('nan')


def main(argv=None) -> int:
    """Run the demo; print where the results are."""
    parser = argparse.ArgumentParser(prog='python -m matte_ros.demo',
                                     description=__doc__.strip().split('\n')[0])
    parser.add_argument('--source', default='demo',
                        help='demo (built-in), a video file, an image folder or a camera index')
    parser.add_argument('--segmenter', default='bgsub')
    parser.add_argument('--param', action='append', default=[], metavar='KEY=VALUE')
    parser.add_argument('--frames', type=int, default=90)
    parser.add_argument('--rate', type=float, default=15.0)
    parser.add_argument('--out', default='out')
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    started = time.monotonic()
    latencies = run_graph(args, out)
    videos = write_videos(out, args.rate)
    sheet = contact_sheet(out)
    modes = modes_sheet(out)
    lat = sorted(v['composite'] for v in latencies.values() if 'composite' in v)
    print('matte_ros demo: %d frames through /demo/matte (%s) in %.1f s' % (
        len(lat), args.segmenter, time.monotonic() - started))
    if lat:
        print('  latency stamp → composite received: median %.1f ms, p95 %.1f ms' % (
            lat[len(lat) // 2], lat[int(0.95 * (len(lat) - 1))]))
    if args.source == 'demo':
        print('  mean IoU of the mask vs the cut-out (frames showing it): %.3f'
              % mean_iou(out, args.frames))
    print('  frames:        %s/frames/{input,mask,alpha,composite}/*.png' % out)
    for path in videos:
        print('  video:         %s' % path)
    print('  contact sheet: %s' % sheet)
    print('  composite modes: %s' % modes)
    return 0
