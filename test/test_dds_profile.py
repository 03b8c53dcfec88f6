"""
The large-frame Fast DDS profile reaches the installed Fast DDS and parses there.

Fast DDS 3 (Kilted) reads ``FASTDDS_DEFAULT_PROFILES_FILE``, Fast DDS 2 (Humble, Jazzy)
``FASTRTPS_DEFAULT_PROFILES_FILE``, and the two accept different XML elements.  A
profile set in the wrong variable, or one the parser refuses, is ignored without
failing: the node starts and silently loses large best-effort frames.  So each check
starts an rclpy node in a child process and reads what Fast DDS's XML parser printed.
Runs on Kilted (``.venv``) and on Jazzy (``.venv-jazzy``, ``pytest -m ros_integration``).
"""

import os
import re
import subprocess
import sys

from matte_ros.ros import dds
import pytest

pytestmark = pytest.mark.ros_integration

START_NODE = ('import rclpy; rclpy.init(); n = rclpy.create_node("profile_probe"); '
              'print("node started"); n.destroy_node(); rclpy.shutdown()')


def start_node_with(profile):
    """Start a node with ``profile`` in the variable dds picks; return its output."""
    env = {k: v for k, v in os.environ.items() if k not in dds.PROFILE_VARS}
    env[dds.profile_variable()] = profile
    env['RMW_IMPLEMENTATION'] = 'rmw_fastrtps_cpp'
    done = subprocess.run([sys.executable, '-c', START_NODE], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return re.sub(r'\x1b\[[0-9;]*m', '', done.stdout + done.stderr)   # Fast DDS colours


def test_the_chosen_variable_is_the_one_fast_dds_reads(tmp_path):
    broken = tmp_path / 'broken.xml'
    broken.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<dds xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"><profiles>'
        '<transport_descriptors><transport_descriptor><transport_id>t</transport_id>'
        '<type>SHM</type><no_such_element>1</no_such_element></transport_descriptor>'
        '</transport_descriptors></profiles></dds>\n')
    output = start_node_with(str(broken))
    assert 'XMLPARSER Error' in output, (
        '%s was ignored: Fast DDS did not read it\n%s' % (dds.profile_variable(), output))


def test_the_shipped_profile_parses():
    profile = dds.profile_path()
    assert profile, 'config/fastdds.xml not found'
    output = start_node_with(profile)
    assert 'node started' in output
    assert 'XMLPARSER Error' not in output, output
