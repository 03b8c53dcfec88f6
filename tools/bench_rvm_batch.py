"""
rvm on ONNX Runtime CPU: time per frame and peak memory by batch size (``rvm.batch_max``).

Each batch size runs in a fresh process (peak RSS, ``VmHWM``, is per process): the
session as the segmenter makes it (:func:`matte_ros.onnx_runtime.create_session`), the
recurrent state carried, the frame size and the automatic downsample ratio of the
segmenter::

    .venv/bin/python tools/bench_rvm_batch.py --model ../shared/models/rvm_mobilenetv3_fp32.onnx
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _status_mib(key: str) -> float:
    with open('/proc/self/status') as stream:
        for line in stream:
            if line.startswith(key + ':'):
                return int(line.split()[1]) / 1024.0
    return float('nan')


def one(model: str, batch: int, width: int, height: int, runs: int, threads: int) -> dict:
    """Measure one batch size in this process; return its figures."""
    sys.path.insert(0, ROOT)
    import numpy as np
    from matte_ros import heap
    from matte_ros import onnx_runtime
    from matte_ros.segmenters import rvm
    heap.keep_freed_frames()
    session, _ = onnx_runtime.create_session(model, 'cpu', threads=threads)
    loaded = _status_mib('VmRSS')
    ratio = rvm.downsample_ratio(height, width, 0.0)
    src = np.random.default_rng(0).random((batch, 3, height, width), dtype=np.float32)
    zero = np.zeros((1, 1, 1, 1), np.float32)
    feed = {'src': src, 'r1i': zero, 'r2i': zero, 'r3i': zero, 'r4i': zero,
            'downsample_ratio': np.array([ratio], np.float32)}
    outs = session.run(None, feed)
    for i, name in enumerate(('r1i', 'r2i', 'r3i', 'r4i')):
        feed[name] = outs[2 + i]
    start = time.perf_counter()
    for _ in range(runs):
        outs = session.run(None, feed)
    per_frame = (time.perf_counter() - start) / (runs * batch)
    return {'batch': batch, 'ratio': ratio, 'ms_per_frame': 1000.0 * per_frame,
            'rss_loaded_mib': loaded, 'peak_rss_mib': _status_mib('VmHWM')}


def main(argv=None) -> int:
    """Run every batch size in its own process; print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('--model', required=True)
    parser.add_argument('--batches', default='1,2,4')
    parser.add_argument('--size', default='640x480')
    parser.add_argument('--runs', type=int, default=6)
    parser.add_argument('--threads', type=int, default=0)
    parser.add_argument('--one', type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split('x'))
    if args.one:
        print(json.dumps(one(args.model, args.one, width, height, args.runs, args.threads)))
        return 0
    rows = []
    for batch in (int(b) for b in args.batches.split(',')):
        done = subprocess.run([sys.executable, os.path.abspath(__file__), '--model', args.model,
                               '--size', args.size, '--runs', str(args.runs), '--threads',
                               str(args.threads), '--one', str(batch)],
                              capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print('load average %s; %s, ratio %.3f, %d runs per batch size'
          % (', '.join('%.1f' % v for v in os.getloadavg()), args.size, rows[0]['ratio'],
             args.runs))
    print('| batch | ms per frame | peak RSS MiB | RSS after load MiB |')
    print('|---|---|---|---|')
    for row in rows:
        cells = (row['batch'], row['ms_per_frame'], row['peak_rss_mib'], row['rss_loaded_mib'])
        print('| %d | %.1f | %.0f | %.0f |' % cells)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
