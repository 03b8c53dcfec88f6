"""
matte_ros: foreground masks, alpha mattes and composites for ROS 2 camera streams.

The package is split in a ROS-free core (``image_encodings``, ``compositing``, ``segmenters``,
``models``, ``pipeline``) and a thin ROS layer (``matte_ros.ros``).
"""

__version__ = '0.1.0'
