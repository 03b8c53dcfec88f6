"""Thin ROS 2 layer over the matte_ros core."""
