"""
MediaPipe's own Python selfie solution, timed and run over DAVIS, for ``matte-ros bench``.

This file runs as a script inside a separate environment (``make setup-mediapipe``:
``mediapipe==0.10.14`` needs NumPy < 2, which the main environment does not have), so
it imports only NumPy, OpenCV and MediaPipe, never ``matte_ros``.  It prints one JSON
object on stdout:

* ``--frames F.npy --seconds S``: ``fps`` of ``SelfieSegmentation.process`` on the
  frames of ``F.npy`` (N×H×W×3 BGR uint8, converted to RGB outside the timing, as an
  application would hand RGB frames to MediaPipe);
* ``--davis DIR --out OUT``: writes ``OUT/<sequence>/<stem>.png`` (255 where the
  person probability is at least 0.5) for every frame of every DAVIS sequence, a fresh
  solution per sequence, for the caller to score with its own scorer.

``--model general|landscape`` picks ``model_selection`` 0 or 1.
"""

import argparse
import json
import os
import sys
import time

MODEL_SELECTION = {'general': 0, 'landscape': 1}
#: The person probability at which a pixel counts as foreground (the node's default
#: ``threshold``).
THRESHOLD = 0.5


def _solution(model: str):
    import mediapipe as mp
    return mp.solutions.selfie_segmentation.SelfieSegmentation(
        model_selection=MODEL_SELECTION[model])


def time_frames(path: str, model: str, seconds: float, warmup: int = 5) -> dict:
    """Return the solution's fps over the frames stored in ``path`` (cycled)."""
    import numpy as np
    frames = [np.ascontiguousarray(f[:, :, ::-1]) for f in np.load(path)]
    with _solution(model) as solution:
        for frame in frames[:warmup]:
            solution.process(frame)
        count, busy = 0, 0.0
        while count < 10 or busy < seconds:
            frame = frames[count % len(frames)]
            start = time.perf_counter()
            solution.process(frame)
            busy += time.perf_counter() - start
            count += 1
    return {'frames': count, 'fps': count / busy}


def davis_masks(root: str, out: str, model: str) -> dict:
    """Write the solution's masks for every DAVIS frame; return the sequences written."""
    import cv2
    import numpy as np
    images = os.path.join(root, 'JPEGImages', '480p')
    written = {}
    for seq in sorted(os.listdir(images)):
        os.makedirs(os.path.join(out, seq), exist_ok=True)
        names = sorted(n for n in os.listdir(os.path.join(images, seq))
                       if n.lower().endswith(('.jpg', '.png')))
        with _solution(model) as solution:
            for name in names:
                bgr = cv2.imread(os.path.join(images, seq, name), cv2.IMREAD_COLOR)
                result = solution.process(np.ascontiguousarray(bgr[:, :, ::-1]))
                mask = (result.segmentation_mask >= THRESHOLD).astype(np.uint8) * 255
                stem = os.path.splitext(name)[0]
                cv2.imwrite(os.path.join(out, seq, stem + '.png'), mask)
        written[seq] = len(names)
    return {'sequences': written}


def main(argv=None) -> int:
    """Parse the arguments, run one job, print its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n\n')[0])
    parser.add_argument('--model', default='general', choices=sorted(MODEL_SELECTION))
    parser.add_argument('--frames', help='N×H×W×3 BGR uint8 .npy file to time on')
    parser.add_argument('--seconds', type=float, default=5.0)
    parser.add_argument('--davis', help='DAVIS 2016 root (JPEGImages/480p/<seq>/)')
    parser.add_argument('--out', help='where --davis writes its masks')
    args = parser.parse_args(argv)
    if args.frames:
        result = time_frames(args.frames, args.model, args.seconds)
    elif args.davis and args.out:
        result = davis_masks(args.davis, args.out, args.model)
    else:
        parser.error('give --frames, or --davis and --out')
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
