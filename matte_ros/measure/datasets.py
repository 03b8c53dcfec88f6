"""
Frame sources: DAVIS and CDnet sequences with their ground truth, and plain inputs.

ROS-free readers used by ``matte-ros eval`` (benchmark layouts) and ``matte-ros process``
(a directory of images, a video file or a camera).  Every reader yields frames in order
as BGR ``uint8`` (H×W×3, OpenCV's order), so they feed a segmenter directly.

Layouts read here:

* DAVIS: ``root/JPEGImages/480p/<seq>/*.jpg`` with ``root/Annotations/480p/<seq>/*.png``
  (same stems; 0 = background, anything else = the object).
* CDnet 2014: ``<seq>/input/inNNNNNN.jpg``, ``<seq>/groundtruth/gtNNNNNN.png``,
  ``<seq>/ROI.bmp`` (non-zero = scored region) and ``<seq>/temporalROI.txt`` (the first
  and last scored frame, 1-based).  Frames before the temporal ROI are meant for
  initialising background models: they are yielded with ``scored=False``.
"""

import os
import re
from typing import Iterator
from typing import List
from typing import Optional
from typing import Tuple

import cv2
import numpy as np

#: File name endings read as images from a directory (case-insensitive).
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp')

DAVIS_RESOLUTION = '480p'


def _natural_key(name: str):
    """Sort key that orders ``frame2`` before ``frame10`` (zero-padded names sort as usual)."""
    return [int(part) if part.isdigit() else part.lower()
            for part in re.split(r'(\d+)', name)]


def _read_color(path: str) -> np.ndarray:
    frame = cv2.imread(path, cv2.IMREAD_COLOR)
    if frame is None:
        raise IOError('cannot read image %s' % path)
    return frame


def _read_gray(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise IOError('cannot read image %s' % path)
    return image


# --- DAVIS ---------------------------------------------------------------------------------

def _davis_dirs(root: str, seq: str = '') -> Tuple[str, str]:
    images = os.path.join(root, 'JPEGImages', DAVIS_RESOLUTION, seq)
    annotations = os.path.join(root, 'Annotations', DAVIS_RESOLUTION, seq)
    return images, annotations


def davis_sequences(root: str) -> List[str]:
    """Return the names of the DAVIS sequences under ``root`` that have frames, sorted."""
    images, _ = _davis_dirs(root)
    if not os.path.isdir(images):
        raise FileNotFoundError('no DAVIS frames at %s (expected root/JPEGImages/%s/<seq>/)'
                                % (images, DAVIS_RESOLUTION))
    return sorted(name for name in os.listdir(images)
                  if os.path.isdir(os.path.join(images, name)))


def davis_frame_count(root: str, seq: str) -> int:
    """Return how many frames the DAVIS sequence has."""
    images, _ = _davis_dirs(root, seq)
    return len([n for n in os.listdir(images) if n.lower().endswith(IMAGE_EXTENSIONS)])


def iter_davis(root: str, seq: str) -> Iterator[Tuple[str, np.ndarray, Optional[np.ndarray]]]:
    """
    Yield ``(stem, frame_bgr, gt)`` for each frame of a DAVIS sequence, in order.

    ``gt`` is a bool H×W mask (annotation value > 0), or ``None`` for a frame that has
    no annotation file (such frames are still yielded: temporal segmenters need them).
    """
    images, annotations = _davis_dirs(root, seq)
    if not os.path.isdir(images):
        raise FileNotFoundError('no DAVIS sequence %r at %s' % (seq, images))
    names = sorted((n for n in os.listdir(images) if n.lower().endswith(IMAGE_EXTENSIONS)),
                   key=_natural_key)
    for name in names:
        stem = os.path.splitext(name)[0]
        frame = _read_color(os.path.join(images, name))
        gt_path = os.path.join(annotations, stem + '.png')
        gt = _read_gray(gt_path) > 0 if os.path.exists(gt_path) else None
        if gt is not None and gt.shape != frame.shape[:2]:
            raise ValueError('annotation %s is %dx%d but its frame is %dx%d'
                             % (gt_path, gt.shape[1], gt.shape[0],
                                frame.shape[1], frame.shape[0]))
        yield stem, frame, gt


# --- CDnet ---------------------------------------------------------------------------------

def _is_cdnet_sequence(path: str) -> bool:
    return os.path.isdir(os.path.join(path, 'input'))


def cdnet_sequences(root: str) -> List[str]:
    """
    Return the CDnet sequence directories at ``root``, sorted by path.

    ``root`` may be one sequence (it holds ``input/``), a category holding sequences, or
    the dataset root holding categories.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError('no CDnet data at %s' % root)
    if _is_cdnet_sequence(root):
        return [root]
    found = []
    for name in sorted(os.listdir(root)):
        sub = os.path.join(root, name)
        if not os.path.isdir(sub):
            continue
        if _is_cdnet_sequence(sub):
            found.append(sub)
        else:
            found.extend(os.path.join(sub, n) for n in sorted(os.listdir(sub))
                         if _is_cdnet_sequence(os.path.join(sub, n)))
    if not found:
        raise FileNotFoundError('no CDnet sequence (a directory holding input/) at or under %s'
                                % root)
    return found


def cdnet_temporal_roi(seqdir: str) -> Optional[Tuple[int, int]]:
    """Return the first and last scored frame numbers (1-based), or None without the file."""
    path = os.path.join(seqdir, 'temporalROI.txt')
    if not os.path.exists(path):
        return None
    with open(path) as f:
        numbers = f.read().split()
    try:
        first, last = int(numbers[0]), int(numbers[1])
    except (IndexError, ValueError):
        raise ValueError('%s must hold two frame numbers, got %r' % (path, numbers))
    return first, last


def cdnet_roi(seqdir: str) -> Optional[np.ndarray]:
    """Return the spatial ROI as a bool H×W mask (non-zero in ROI.bmp), or None without it."""
    path = os.path.join(seqdir, 'ROI.bmp')
    if not os.path.exists(path):
        return None
    return _read_gray(path) > 0


def _cdnet_inputs(seqdir: str) -> List[Tuple[int, str]]:
    """Return ``(frame number, file name)`` of the input frames, in frame order."""
    inputs = os.path.join(seqdir, 'input')
    found = []
    for name in os.listdir(inputs):
        match = re.match(r'^in(\d+)\.(jpg|jpeg|png|bmp)$', name, re.IGNORECASE)
        if match:
            found.append((int(match.group(1)), name))
    return sorted(found)


def cdnet_frame_count(seqdir: str) -> int:
    """Return how many input frames the CDnet sequence has."""
    return len(_cdnet_inputs(seqdir))


def iter_cdnet(seqdir: str, first: int = 1, last: Optional[int] = None
               ) -> Iterator[Tuple[str, np.ndarray, Optional[np.ndarray], bool]]:
    """
    Yield ``(stem, frame_bgr, gt, scored)`` for each input frame of a CDnet sequence.

    ``first`` and ``last`` (1-based frame numbers, inclusive) restrict the frames read.

    ``gt`` is the uint8 ground truth (0 static, 50 shadow, 85 outside ROI, 170 unknown,
    255 moving) or ``None`` when the frame has no ground-truth file; ``scored`` is
    whether the frame lies within ``temporalROI.txt`` (all frames without that file) and
    has ground truth.
    """
    if not _is_cdnet_sequence(seqdir):
        raise FileNotFoundError('no CDnet sequence at %s (expected input/)' % seqdir)
    window = cdnet_temporal_roi(seqdir)
    for number, name in _cdnet_inputs(seqdir):
        if number < first or (last is not None and number > last):
            continue
        stem = os.path.splitext(name)[0]
        frame = _read_color(os.path.join(seqdir, 'input', name))
        gt_path = os.path.join(seqdir, 'groundtruth', 'gt%06d.png' % number)
        gt = _read_gray(gt_path) if os.path.exists(gt_path) else None
        if gt is not None and gt.shape != frame.shape[:2]:
            raise ValueError('ground truth %s is %dx%d but its frame is %dx%d'
                             % (gt_path, gt.shape[1], gt.shape[0],
                                frame.shape[1], frame.shape[0]))
        in_window = window is None or window[0] <= number <= window[1]
        yield stem, frame, gt, bool(in_window and gt is not None)


# --- plain inputs (matte-ros process) ------------------------------------------------------

def _camera_index(path) -> Optional[int]:
    """Return the camera index that ``path`` names (``0``, ``'0'``, ``/dev/video0``), or None."""
    if isinstance(path, int):
        return path
    text = str(path)
    if text.isdigit():
        return int(text)
    match = re.match(r'^/dev/video(\d+)$', text)
    if match and not os.path.isfile(text):
        return int(match.group(1))
    return None


def _image_files(directory: str) -> List[str]:
    names = [n for n in os.listdir(directory) if n.lower().endswith(IMAGE_EXTENSIONS)]
    return [os.path.join(directory, n) for n in sorted(names, key=_natural_key)]


def count(path) -> Optional[int]:
    """Return how many frames :func:`iter_frames` will yield, when cheaply known, else None."""
    if _camera_index(path) is not None:
        return None
    if os.path.isdir(path):
        return len(_image_files(path))
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            return None
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        return frames if frames > 0 else None
    finally:
        capture.release()


def iter_frames(path) -> Iterator[Tuple[str, np.ndarray]]:
    """
    Yield ``(stem, frame_bgr)`` from a directory of images, a video file or a camera.

    A directory yields its png/jpg/jpeg/bmp files in natural order, stem = file name
    without extension.  A video file or a camera (an int index, ``'0'`` or
    ``/dev/videoN``) yields frames until the stream ends, stem = the frame index padded
    to 6 digits.
    """
    camera = _camera_index(path)
    if camera is None and os.path.isdir(path):
        for file_path in _image_files(path):
            yield os.path.splitext(os.path.basename(file_path))[0], _read_color(file_path)
        return
    if camera is None and not os.path.exists(path):
        raise FileNotFoundError('no such input: %s' % path)
    capture = cv2.VideoCapture(camera if camera is not None else path)
    if not capture.isOpened():
        capture.release()
        raise IOError('cannot open %s %s' % ('camera' if camera is not None else 'video',
                                             path))
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            yield '%06d' % index, frame
            index += 1
    finally:
        capture.release()
