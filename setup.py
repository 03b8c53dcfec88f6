"""Build script of the matte_ros ament_python package (colcon build, or pip install -e .)."""

from glob import glob
import os

from setuptools import find_packages
from setuptools import setup

PACKAGE = 'matte_ros'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        (os.path.join('share', PACKAGE, 'launch'), glob('launch/*.launch.py')),
        (os.path.join('share', PACKAGE, 'config'), glob('config/*.yaml') + glob('config/*.xml')),
        (os.path.join('share', PACKAGE, 'rviz'), glob('rviz/*.rviz')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='matte_ros developers',
    maintainer_email='dev@matte-ros.invalid',
    description='Foreground masks, alpha mattes and composites for ROS 2 camera streams.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},   # colcon test picks pytest from here
    entry_points={
        'console_scripts': [
            'matte_node = matte_ros.ros.node:main',
            'matte-ros = matte_ros.cli.main:main',
            'matte_multi_node = matte_ros.ros.multi:main',
        ],
    },
)
