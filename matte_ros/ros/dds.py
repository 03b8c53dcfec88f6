"""
Fast DDS settings for large images.

Fast DDS's default transports lose best-effort samples above ~512 KB (a 640×480 bgr8
image is 900 KB).  ``config/fastdds.xml`` (shared memory with a 32 MiB segment, UDPv4
with 4 MiB buffers) fixes it; both ends of a topic must use it.  Fast DDS 3 (Kilted)
reads ``FASTDDS_DEFAULT_PROFILES_FILE``, Fast DDS 2 (Humble, Jazzy)
``FASTRTPS_DEFAULT_PROFILES_FILE``.
"""

import os
from typing import Optional

PROFILE_VARS = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')


def profile_path() -> Optional[str]:
    """Return the shipped profile: from the installed share directory, else the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory
        path = os.path.join(get_package_share_directory('matte_ros'), 'config', 'fastdds.xml')
        if os.path.isfile(path):
            return path
    except Exception:  # noqa: B902 - ament index missing or package not installed there
        pass
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.path.join(here, 'config', 'fastdds.xml')
    return path if os.path.isfile(path) else None


def profile_variable() -> str:
    """Return the environment variable the installed Fast DDS reads its profile from."""
    distro = os.environ.get('ROS_DISTRO', '').lower()
    if distro in ('humble', 'iron', 'jazzy'):
        return 'FASTRTPS_DEFAULT_PROFILES_FILE'
    if distro:
        return 'FASTDDS_DEFAULT_PROFILES_FILE'
    # PyPI wheels set no ROS_DISTRO: Fast DDS 3 ships as ``ros-fastdds``, Fast DDS 2
    # (Jazzy's 2.14) as ``ros-fastrtps``, which reads only FASTRTPS_DEFAULT_PROFILES_FILE.
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version
    for distribution in ('ros-fastdds', 'ros-fastrtps'):
        try:
            major = int(version(distribution).split('.')[0])
        except (PackageNotFoundError, ValueError):
            continue
        return 'FASTDDS_DEFAULT_PROFILES_FILE' if major >= 3 else 'FASTRTPS_DEFAULT_PROFILES_FILE'
    return 'FASTDDS_DEFAULT_PROFILES_FILE'   # not the PyPI wheels: a current distribution


def use_large_frame_profile(environ=None) -> Optional[str]:
    """
    Point Fast DDS at the shipped profile unless the user chose one already.

    Must run before ``rclpy.init``.  Returns the profile set (None when left alone:
    a profile is already configured, another RMW is selected, or no profile found).
    """
    environ = os.environ if environ is None else environ
    if any(environ.get(v) for v in PROFILE_VARS):
        return None
    if environ.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp') != 'rmw_fastrtps_cpp':
        return None
    if environ.get('MATTE_ROS_DDS_PROFILE', '1') == '0':
        return None
    path = profile_path()
    if path:
        environ[profile_variable()] = path
    return path
