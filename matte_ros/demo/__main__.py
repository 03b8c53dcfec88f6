"""``python -m matte_ros.demo``: run the demo (see :mod:`matte_ros.demo`)."""

import sys

from matte_ros.demo import main

sys.exit(main())
