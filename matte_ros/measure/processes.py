"""
Start the node and its companions as separate processes on an isolated DDS graph.

The demo, the benchmarks and the integration tests run the real node in its own
process, so that frames really cross DDS.  ``isolated_env`` gives every run its own
``ROS_DOMAIN_ID`` and localhost-only discovery, and the large-frame Fast DDS profile.
"""

import os
import signal
import subprocess
import sys
from typing import Dict
from typing import List
from typing import Optional

from matte_ros.ros import dds


def isolated_env(domain_id: Optional[int] = None, base: Optional[Dict[str, str]] = None):
    """Return an environment with its own domain, localhost discovery and the DDS profile."""
    env = dict(os.environ if base is None else base)
    if domain_id is None:
        domain_id = 1 + os.getpid() % 200
    env['ROS_DOMAIN_ID'] = str(domain_id)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    if dds.profile_variable() == 'FASTRTPS_DEFAULT_PROFILES_FILE':
        env['ROS_LOCALHOST_ONLY'] = '1'   # Humble/Jazzy honour this one
    env['PYTHONUNBUFFERED'] = '1'
    env['PYTHONFAULTHANDLER'] = '1'   # a crash in a child logs each thread's Python stack
    dds.use_large_frame_profile(env)
    return env


def apply_isolation(domain_id: Optional[int] = None) -> Dict[str, str]:
    """Isolate this process (call before ``rclpy.init``); return the environment used."""
    env = isolated_env(domain_id)
    os.environ.update(env)
    return env


class ManagedProcess:
    """A child process that is stopped with SIGINT, then SIGTERM, then SIGKILL."""

    def __init__(self, argv: List[str], env: Dict[str, str], log_path: Optional[str] = None):
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, 'wb') if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        """Tell whether the process is still running."""
        return self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> int:
        """Ask the process to exit (SIGINT), escalate after ``timeout``; return its code."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    continue
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._log is not subprocess.DEVNULL:
            self._log.close()
        return self.proc.returncode

    def output(self) -> str:
        """Return what the process logged so far (when it logs to a file)."""
        if not self.log_path:
            return ''
        with open(self.log_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')


def node_command(namespace: str = '', params: Optional[Dict[str, object]] = None,
                 remaps: Optional[Dict[str, str]] = None, params_file: str = '',
                 console_script: bool = False) -> List[str]:
    """
    Return argv that runs ``matte_node`` with the given ROS arguments.

    By default through this interpreter (``python -m``); with ``console_script`` through
    the installed ``matte_node`` entry point beside it, as a user would start it.
    """
    if console_script:
        argv = [os.path.join(os.path.dirname(sys.executable), 'matte_node'), '--ros-args']
    else:
        argv = [sys.executable, '-m', 'matte_ros.ros.node', '--ros-args']
    if namespace:
        argv += ['-r', '__ns:=' + namespace]
    for src, dst in (remaps or {}).items():
        argv += ['-r', '%s:=%s' % (src, dst)]
    if params_file:
        argv += ['--params-file', params_file]
    for key, value in (params or {}).items():
        if isinstance(value, bool):
            value = 'true' if value else 'false'
        elif isinstance(value, (list, tuple)):
            value = '[%s]' % ','.join(str(v) for v in value)
        argv += ['-p', '%s:=%s' % (key, value)]
    return argv
