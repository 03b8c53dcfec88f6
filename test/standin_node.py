"""
Run ``matte_node`` with the stand-in GPU listing of test/standins.py.

The real CPU onnxruntime of this process lists TensorRT and CUDA and then drops them at
session creation, as a robot whose GPU libraries are missing.  Used as
``python test/standin_node.py [missing-libraries|ep-error|slow-tensorrt] --ros-args ...``
(slow-tensorrt: TensorRT starts, its engine build takes 4 s and then fails).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import standins  # noqa: E402,I100 (beside this file)


def main() -> None:
    """Apply the stand-in listing, then run the node with the remaining arguments."""
    failure = sys.argv.pop(1) if len(sys.argv) > 1 and not sys.argv[1].startswith('-') \
        else 'missing-libraries'
    if failure == 'slow-tensorrt':
        standins.claim_slow_tensorrt(standins.Patch(), 4.0)
    else:
        standins.claim_gpu_providers(standins.Patch(), failure)
    from matte_ros.ros import node
    node.main(sys.argv)


if __name__ == '__main__':
    main()
