#!/usr/bin/env python3
"""
GPU check: run matte_ros's ROS-free core on an NVIDIA GPU through PyTorch and print one table.

For an x86 machine with an NVIDIA GPU, CUDA PyTorch, torchvision, onnx and OpenCV,
Python 3.12, and no ROS and no internet.  What such a machine lacks travels in a bundle
made here first (``bundle``: the 15 MB RVM ONNX, a few DAVIS frames and the
``onnx2torch`` wheel; the project's source travels as the repository itself), checked to
fit the 64 MiB that can travel.  ONNX Runtime's GPU providers cannot be tried there
(onnxruntime-gpu and TensorRT are far larger than that); PyTorch's CUDA can:

* rvm on ``rvm.runtime torchscript`` on cuda, fp32 and fp16, against the CPU result
  (the default ONNX Runtime segmenter) on real frames, the recurrent state carried:
  largest and mean alpha difference, IoU of the ``alpha > 0.5`` masks;
* rvm fps at 640×480, 1280×720 and 1920×1080 (automatic downsample ratio) with the
  state kept on the device, fp32 and fp16, and the peak device memory of each;
* ``instance`` (torchvision Mask R-CNN) on cuda with randomly initialised weights (speed
  only: random weights detect nothing meaningful) at 640×480;

all within a time budget (default 270 s; rows that do not fit say so).  Usage::

    python3 tools/gpu_check.py bundle            # here: collects gpu_bundle/, checks size
    python3 tools/gpu_check.py run --out DIR     # there: the table, also DIR/gpu_check.md/.json

``make gpu-check`` runs ``run`` with the bundle.  The test suite dry-runs ``run`` on the
CPU (``--device cpu``, small sizes, two frames) so the script is known to work.
"""

import argparse
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLE = os.path.join(ROOT, 'gpu_bundle')
SHARED = os.path.join(ROOT, '..', 'shared')
MODEL_FILE = 'rvm_mobilenetv3_fp32.onnx'
#: Small pure-Python wheels the GPU machine lacks.
WHEELS = ('onnx2torch==1.5.15',)
#: What may travel with one call (the repository's tracked files included).
LIMIT_BYTES = 64 * 1024 * 1024
SIZES = ((640, 480), (1280, 720), (1920, 1080))
DAVIS_SEQUENCE = 'parkour'


# --- bundle (on the development machine) ---------------------------------------------------

def tracked_bytes() -> int:
    """Return the size of the repository's tracked files (they travel as the checkout)."""
    try:
        names = subprocess.run(['git', 'ls-files', '-z'], cwd=ROOT, check=True,
                               capture_output=True).stdout.decode().split('\0')
    except (OSError, subprocess.CalledProcessError):
        return 0
    return sum(os.path.getsize(os.path.join(ROOT, n)) for n in names
               if n and os.path.isfile(os.path.join(ROOT, n)))


def folder_bytes(path: str) -> int:
    """Return the total size of the files under ``path``."""
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
               for f in files)


def bundle(out: str, shared: str, frames: int, wheels_from: str = '') -> int:
    """Collect the model, frames and wheels into ``out``; print the list and the total."""
    os.makedirs(os.path.join(out, 'wheels'), exist_ok=True)
    os.makedirs(os.path.join(out, 'frames'), exist_ok=True)
    model = os.path.join(shared, 'models', MODEL_FILE)
    if not os.path.isfile(model):
        print('error: %s is missing (the RVM model must travel)' % model)
        return 2
    shutil.copy2(model, os.path.join(out, MODEL_FILE))
    pictures = sorted(glob.glob(os.path.join(shared, 'data', 'davis2016', 'JPEGImages', '480p',
                                             DAVIS_SEQUENCE, '*.jpg')))[:frames]
    for path in pictures:
        shutil.copy2(path, os.path.join(out, 'frames', os.path.basename(path)))
    for spec in WHEELS:
        name = spec.split('==')[0]
        if glob.glob(os.path.join(out, 'wheels', name + '-*.whl')):
            continue
        found = glob.glob(os.path.join(wheels_from, name + '-*.whl')) if wheels_from else []
        if found:
            shutil.copy2(found[0], os.path.join(out, 'wheels'))
            continue
        command = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
                   '--python-version', '3.12', '--platform', 'manylinux2014_x86_64',
                   '-d', os.path.join(out, 'wheels'), spec]
        if subprocess.run(command).returncode != 0:
            print('error: could not download %s (%s)' % (spec, ' '.join(command)))
            return 2
    source = tracked_bytes()
    rows = [('repository (tracked files)', source)]
    for dirpath, _, files in os.walk(out):
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            rows.append((os.path.relpath(path, ROOT), os.path.getsize(path)))
    total = sum(size for _, size in rows)
    for label, size in rows:
        print('%10.2f MiB  %s' % (size / 2 ** 20, label))
    fits = total <= LIMIT_BYTES
    print('%10.2f MiB  total (limit %d MiB): %s' % (
        total / 2 ** 20, LIMIT_BYTES // 2 ** 20, 'fits' if fits else 'TOO LARGE'))
    print('carry: %s' % os.path.relpath(out, ROOT))
    return 0 if fits else 1


# --- run (on the GPU machine) ---------------------------------------------------------------

def use_bundle(path: str) -> None:
    """Put the bundle's pure-Python wheels on sys.path (a wheel is importable as a zip)."""
    for wheel in sorted(glob.glob(os.path.join(path, 'wheels', '*.whl'))):
        if wheel not in sys.path:
            sys.path.insert(0, wheel)
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)


def load_frames(path: str, count: int):
    """Return up to ``count`` BGR frames from the bundle (or ../shared), else synthetic ones."""
    import cv2
    import numpy as np
    names = sorted(glob.glob(os.path.join(path, 'frames', '*.jpg')))
    if not names:
        names = sorted(glob.glob(os.path.join(SHARED, 'data', 'davis2016', 'JPEGImages',
                                              '480p', DAVIS_SEQUENCE, '*.jpg')))
    frames = [cv2.imread(n) for n in names[:count]]
    if frames:
        return frames, 'DAVIS %s (%d frames)' % (DAVIS_SEQUENCE, len(frames))
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (480, 854, 3)).astype(np.uint8), (9, 9), 0)
    frames = []
    for i in range(count):
        frame = base.copy()
        cv2.ellipse(frame, (300 + 8 * i, 260), (90, 180), 0, 0, 360, (170, 140, 120), -1)
        frames.append(frame)
    return frames, 'synthetic (%d frames; no DAVIS frames found)' % count


def model_path(path: str) -> str:
    """Return the RVM model from the bundle, else from ../shared/models."""
    for candidate in (os.path.join(path, MODEL_FILE), os.path.join(SHARED, 'models', MODEL_FILE)):
        if os.path.isfile(candidate):
            return candidate
    raise SystemExit('error: %s not found in %s or ../shared/models; run `bundle` first'
                     % (MODEL_FILE, path))


class Budget:
    """The time left for the check; rows that would start after it are skipped."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Return the seconds left."""
        return self.end - time.monotonic()


def _memory(torch, device: str):
    """Return a function giving the peak device memory (MiB) since it was made."""
    if device != 'cuda':
        return lambda: float('nan')
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    return lambda: torch.cuda.max_memory_allocated() / 2 ** 20


def rvm_values(model: str, model_dir: str, runtime: str):
    """Return parameter values running rvm from ``model`` on ``runtime``."""
    from matte_ros import params
    values = params.defaults()
    values.update({'models.model_path': model, 'models.model_dir': model_dir,
                   'rvm.runtime': runtime})
    return values


def parity(torch, model, model_dir, frames, device, half):
    """Return the alpha difference of TorchScript on ``device`` against ONNX Runtime CPU."""
    import numpy as np
    from matte_ros.segmenters import create
    from matte_ros.segmenters.rvm import RobustVideoMatting
    cpu = create('rvm', rvm_values(model, model_dir, 'onnxruntime'), 'cpu')
    backend = 'cuda' if device == 'cuda' else 'cpu'
    gpu = RobustVideoMatting(rvm_values(model, model_dir, 'torchscript'), backend, half=half)
    worst = mean = 0.0
    ious = []
    try:
        for frame in frames:
            a, b = gpu.process(frame).alpha, cpu.process(frame).alpha
            diff = np.abs(a - b)
            worst, mean = max(worst, float(diff.max())), mean + float(diff.mean())
            union = ((a > 0.5) | (b > 0.5)).sum()
            ious.append(((a > 0.5) & (b > 0.5)).sum() / union if union else 1.0)
        return {'max_dalpha': worst, 'mean_dalpha': mean / len(frames),
                'iou': float(np.mean(ious)), 'runs_on': gpu.describe()}
    finally:
        gpu.close()
        cpu.close()


def rvm_speed(torch, model, model_dir, frames, device, half, size, count):
    """Return fps and peak memory of TorchScript rvm at ``size`` (state kept on device)."""
    import cv2
    from matte_ros.segmenters.rvm import RobustVideoMatting
    video = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    peak = _memory(torch, device)
    seg = RobustVideoMatting(rvm_values(model, model_dir, 'torchscript'),
                             'cuda' if device == 'cuda' else 'cpu', half=half)
    try:
        seg.process(video[0])  # traces the module for this size
        seg.process(video[1 % len(video)])
        start = time.perf_counter()
        for i in range(count):
            seg.process(video[i % len(video)])  # alpha comes back to the host each frame
        seconds = time.perf_counter() - start
        on_device = all(getattr(t, 'device', None) is not None and t.device.type == device
                        for t in seg.state.tensors())
        return {'fps': count / seconds, 'peak_mib': peak(), 'state_on_device': on_device,
                'ratio': seg.ratio}
    finally:
        seg.close()


def instance_speed(torch, device, size, count, min_size):
    """Return fps and peak memory of ``instance`` with a randomly initialised Mask R-CNN."""
    import numpy as np
    from matte_ros import params
    from matte_ros.segmenters import torchvision_ops
    from matte_ros.segmenters.instance import InstanceSegmenter
    torchvision_ops.import_torchvision()
    from torchvision.models.detection import maskrcnn_resnet50_fpn
    torch.manual_seed(0)
    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    with tempfile.TemporaryDirectory() as folder:
        weights = os.path.join(folder, 'random_maskrcnn.pth')
        torch.save(model.state_dict(), weights)
        values = params.defaults()
        values.update({'instance.weights': weights})
        peak = _memory(torch, device)

        class Sized(InstanceSegmenter):
            pass

        if min_size:
            Sized.min_size, Sized.max_size = min_size, max(min_size, int(min_size * 1.67))
        seg = Sized(values, 'cuda' if device == 'cuda' else 'cpu')
        frame = np.random.default_rng(1).integers(0, 255, (size[1], size[0], 3)).astype(
            np.uint8)
        try:
            seg.process(frame)
            start = time.perf_counter()
            for _ in range(count):
                seg.process(frame)
            seconds = time.perf_counter() - start
            return {'fps': count / seconds, 'peak_mib': peak(), 'runs_on': seg.describe()}
        finally:
            seg.close()


def parse_size(text: str):
    """Return (width, height) from ``WxH``."""
    width, height = text.lower().split('x')
    return int(width), int(height)


def run(args) -> int:
    """Run the checks and print one table (also written to ``--out`` as .md and .json)."""
    use_bundle(args.bundle)
    import torch
    device = args.device
    if device == 'cuda' and not torch.cuda.is_available():
        print('error: torch %s sees no CUDA device (use --device cpu for a dry run)'
              % torch.__version__)
        return 2
    budget = Budget(args.budget)
    model = model_path(args.bundle)
    frames, source = load_frames(args.bundle, args.frames)
    if args.parity_size:
        import cv2
        size = parse_size(args.parity_size)
        frames = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
        source += ' at %dx%d' % size
    gpu = torch.cuda.get_device_name(0) if device == 'cuda' else platform.processor() or 'cpu'
    head = {'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), 'device': device,
            'gpu': gpu, 'torch': torch.__version__, 'cuda': torch.version.cuda,
            'python': platform.python_version(), 'frames': source}
    rows = []
    precisions = [p for p in args.precisions.split(',') if p]
    sizes = [parse_size(s) for s in args.sizes.split(',') if s]
    from matte_ros import models
    # Traces are derived files: written only inside the user's model cache, and removed.
    cache = models.make_writable(models.default_model_dir(), 'model cache')
    with tempfile.TemporaryDirectory(prefix='gpu_check-', dir=cache) as model_dir:
        for precision in precisions:
            half = precision == 'fp16'
            label = 'rvm torchscript %s on %s' % (precision, device)
            if budget.left() <= 0:
                rows.append({'row': label + ' vs ONNX Runtime CPU',
                             'note': 'skipped (time budget)'})
                continue
            try:
                result = parity(torch, model, model_dir, frames, device, half)
                rows.append({'row': label + ' vs ONNX Runtime CPU, %s' % source, **result})
            except Exception as exc:  # noqa: B902 - a failed row is reported, the rest runs
                rows.append({'row': label + ' parity', 'note': '%s: %s' % (
                    type(exc).__name__, exc)})
            for size in sizes:
                name = '%s fps at %dx%d' % (label, size[0], size[1])
                if budget.left() <= 0:
                    rows.append({'row': name, 'note': 'skipped (time budget)'})
                    continue
                try:
                    speed = rvm_speed(torch, model, model_dir, frames, device, half, size,
                                      args.count)
                    rows.append({'row': name, **speed})
                except Exception as exc:  # noqa: B902
                    rows.append({'row': name, 'note': '%s: %s' % (type(exc).__name__, exc)})
        if not args.no_instance:
            size = sizes[0] if sizes else (640, 480)
            name = 'instance (random Mask R-CNN) fps on %s at %dx%d' % (device, size[0], size[1])
            if budget.left() <= 0:
                rows.append({'row': name, 'note': 'skipped (time budget)'})
            else:
                try:
                    rows.append({'row': name, **instance_speed(torch, device, size, args.count,
                                                               args.instance_min_size)})
                except Exception as exc:  # noqa: B902
                    rows.append({'row': name, 'note': '%s: %s' % (type(exc).__name__, exc)})
    text = table(head, rows)
    print(text)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, 'gpu_check.md'), 'w', encoding='utf-8') as stream:
            stream.write(text + '\n')
        with open(os.path.join(args.out, 'gpu_check.json'), 'w', encoding='utf-8') as stream:
            json.dump({'head': head, 'rows': rows}, stream, indent=1, default=str)
    failed = [r for r in rows if 'note' in r and not r['note'].startswith('skipped')]
    return 1 if failed else 0


def _cell(row, key, form):
    value = row.get(key)
    return '' if value is None else form % value


def table(head, rows) -> str:
    """Return the check as one markdown table with a header line."""
    lines = ['GPU check, %(date)s: %(gpu)s (%(device)s), torch %(torch)s, CUDA %(cuda)s, '
             'Python %(python)s; frames: %(frames)s' % head, '',
             '| check | fps | peak MiB | max Δalpha | mean Δalpha | IoU | note |',
             '|---|---|---|---|---|---|---|']
    for row in rows:
        note = row.get('note', '')
        if 'state_on_device' in row:
            note = 'ratio %.3f, state on device: %s' % (row['ratio'], row['state_on_device'])
        elif 'runs_on' in row:
            note = row['runs_on']
        lines.append('| %s | %s | %s | %s | %s | %s | %s |' % (
            row['row'], _cell(row, 'fps', '%.1f'), _cell(row, 'peak_mib', '%.0f'),
            _cell(row, 'max_dalpha', '%.2e'), _cell(row, 'mean_dalpha', '%.2e'),
            _cell(row, 'iou', '%.4f'), note.replace('|', '/')))
    return '\n'.join(lines)


def main(argv=None) -> int:
    """Parse the command line and run ``bundle`` or ``run``."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    pack = sub.add_parser('bundle', help='collect what the GPU machine lacks; check its size')
    pack.add_argument('--out', default=BUNDLE)
    pack.add_argument('--shared', default=SHARED)
    pack.add_argument('--frames', type=int, default=12, help='DAVIS frames to take along')
    pack.add_argument('--wheels-from', default='', help='a folder holding the wheels already')
    check = sub.add_parser('run', help='run the checks and print the table')
    check.add_argument('--bundle', default=BUNDLE)
    check.add_argument('--device', default='cuda', choices=('cuda', 'cpu'))
    check.add_argument('--sizes', default=','.join('%dx%d' % s for s in SIZES))
    check.add_argument('--precisions', default='fp32,fp16')
    check.add_argument('--frames', type=int, default=12, help='frames for the parity rows')
    check.add_argument('--parity-size', default='', help='WxH for the parity rows (default: '
                       "the frames' own, 854x480)")
    check.add_argument('--count', type=int, default=50, help='timed frames per speed row')
    check.add_argument('--budget', type=float, default=270.0, help='seconds for all rows')
    check.add_argument('--no-instance', action='store_true')
    check.add_argument('--instance-min-size', type=int, default=0,
                       help="Mask R-CNN's input scaling (0 = torchvision's 800)")
    check.add_argument('--out', default='', help='also write gpu_check.md and .json here')
    args = parser.parse_args(argv)
    if args.command == 'bundle':
        return bundle(args.out, args.shared, args.frames, args.wheels_from)
    return run(args)


if __name__ == '__main__':
    sys.exit(main())
