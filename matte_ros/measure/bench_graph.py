"""
The live half of ``matte-ros bench``: player process → node process → recorder process.

:class:`NodeUnderTest` starts ``matte_node`` in its own process on an isolated DDS
graph (:mod:`processes`), configures and activates it, and listens to its
``/diagnostics`` (per-stage times).  :meth:`NodeUnderTest.run` then feeds it one stream
from the player at a given rate and size while the recorder (``--no-images``) logs
stamp → receipt latency of every output, and samples the node's ``/proc`` entries.
Call :func:`matte_ros.measure.processes.apply_isolation` before ``rclpy.init``.
"""

import json
import os
import re
import sys
import time
from typing import Any
from typing import Dict
from typing import List
from typing import Tuple

from diagnostic_msgs.msg import DiagnosticArray
from matte_ros.measure import benchmark
from matte_ros.measure import processes
from matte_ros.ros.lifecycle_client import LifecycleClient
import rclpy

NAMESPACE = '/bench'
ECHO_NAMESPACE = '/bench_echo'
_SENT = re.compile(r'sent (\d+) frames on \S+ in ([0-9.]+) s')


def _module(name: str, *args) -> List[str]:
    return [sys.executable, '-m', name] + [str(a) for a in args]


class NodeUnderTest:
    """One ``matte_node`` process with a segmenter, driven and watched from ``client``."""

    def __init__(self, client, params: Dict[str, Any], env: Dict[str, str], workdir: str,
                 timeout: float = 120.0):
        values = dict(params)
        values.setdefault('diagnostics_period', 0.5)
        self._start(client, env, workdir, NAMESPACE, 'matte',
                    processes.node_command(namespace=NAMESPACE, params=values))
        lifecycle = LifecycleClient(client, self.target, timeout=timeout)
        for transition in ('configure', 'activate'):
            if not lifecycle.change_state(transition):
                raise RuntimeError('the node refused to %s; see %s'
                                   % (transition, self.process.log_path))

    def _start(self, client, env: Dict[str, str], workdir: str, namespace: str, name: str,
               argv: List[str]) -> None:
        """Start the process under test (``name`` in ``namespace``) and watch /diagnostics."""
        self.client = client
        self.env = env
        self.workdir = workdir
        self.namespace = namespace
        self.target = '%s/%s' % (namespace, name)
        os.makedirs(workdir, exist_ok=True)
        self.process = processes.ManagedProcess(argv, env,
                                                os.path.join(workdir, name + '.log'))
        self.diagnostics: List[Dict[str, str]] = []
        self._sub = client.create_subscription(DiagnosticArray, '/diagnostics',
                                               self._on_diagnostics, 50)

    @property
    def pid(self) -> int:
        """Return the node's process id."""
        return self.process.proc.pid

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(self.target + ':'):
                self.diagnostics.append({kv.key: kv.value for kv in status.values})

    def _spin(self, seconds: float, until=None, monitor=None) -> bool:
        end = time.monotonic() + seconds
        next_sample = 0.0
        while time.monotonic() < end:
            rclpy.spin_once(self.client, timeout_sec=0.02)
            if monitor is not None and time.monotonic() >= next_sample:
                monitor.sample()
                next_sample = time.monotonic() + 0.2
            if until is not None and until():
                return True
        return until is None

    def run(self, label: str, size: Tuple[int, int], rate: float, seconds: float,
            idle: float = 5.0) -> Dict[str, Any]:
        """
        Send ``seconds`` of the demo sequence at ``rate`` Hz and ``size``; return measurements.

        The recorder stops ``idle`` seconds after the last output: make it longer than
        the time between two outputs.

        Returns input/output fps, composite latency percentiles (ms), the node's mean
        stage times from its diagnostics (``processing`` = convert in to publish), its
        per-frame latency medians (``in_node_ms``: stamp to outputs published, and the
        part of it not spent in the segmenter pipeline), node capacity (1000 /
        processing ms), and its CPU and memory over the run.
        """
        out = os.path.join(self.workdir, label)
        recorder = processes.ManagedProcess(
            _module('matte_ros.measure.recorder', '--node', self.target, '--out', out,
                    '--no-images', '--idle', idle, '--timeout', seconds + 180),
            self.env, os.path.join(self.workdir, label + '.recorder.log'))
        composite = self.target + '/composite'
        if not self._spin(60.0, lambda: self.client.count_subscribers(composite) >= 1):
            recorder.stop()
            raise RuntimeError('the recorder never subscribed to %s' % composite)
        start_diag = len(self.diagnostics)
        monitor = benchmark.ProcessMonitor(self.pid)
        player = processes.ManagedProcess(
            _module('matte_ros.measure.player', '--source', 'demo', '--count', 60,
                    '--size', benchmark.size_label(size), '--rate', '%.3f' % rate,
                    '--seconds', seconds, '--topic', self.namespace + '/image',
                    '--wait-subscribers', 1),
            self.env, os.path.join(self.workdir, label + '.player.log'))
        try:
            self._spin(seconds + 120.0, lambda: not player.alive(), monitor)
            self._spin(120.0, lambda: not recorder.alive())
            self._spin(1.2)   # one more diagnostics window after the last frame
        finally:
            player.stop()
            recorder.stop()
        sent = _SENT.search(player.output())
        if sent is None:
            raise RuntimeError('the player did not finish: %s' % player.output()[-500:])
        path = os.path.join(out, 'latency_ms.json')
        if not os.path.exists(path):
            raise RuntimeError('the recorder wrote no %s: %s' % (path, recorder.output()[-500:]))
        with open(path) as f:
            latencies = json.load(f)
        windows = self.diagnostics[start_diag - 1:] if start_diag else self.diagnostics
        row = summarise(latencies, int(sent.group(1)), float(sent.group(2)),
                        benchmark.weighted_stage_means(windows), monitor.summary())
        row['in_node_ms'] = benchmark.weighted_window_medians(windows)
        return row

    def stop(self) -> None:
        """Stop the node process and detach (once; later calls do nothing)."""
        self.process.stop()
        if self._sub is not None:
            self.client.destroy_subscription(self._sub)
            self._sub = None


class EchoUnderTest(NodeUnderTest):
    """
    The transport floor: :mod:`matte_ros.measure.echo` in place of the node, same graph.

    :meth:`run` measures it like the node (its stage times are empty: it has none).
    """

    def __init__(self, client, env: Dict[str, str], workdir: str, timeout: float = 60.0):
        self._start(client, env, workdir, ECHO_NAMESPACE, 'echo',
                    _module('matte_ros.measure.echo', '--namespace', ECHO_NAMESPACE))
        image = ECHO_NAMESPACE + '/image'
        if not self._spin(timeout, lambda: self.client.count_subscribers(image) >= 1):
            self.process.stop()
            raise RuntimeError('the echo node never subscribed to %s; see %s'
                               % (image, self.process.log_path))


def summarise(latencies: Dict[str, Dict[str, float]], sent: int, send_seconds: float,
              stages: Dict[str, float], usage: Dict[str, float]) -> Dict[str, Any]:
    """Turn the recorder's ``{stamp: {output: latency ms}}`` and the samples into one row."""
    lat = []
    receipts = []
    for key, outputs in latencies.items():
        if 'composite' in outputs:
            lat.append(outputs['composite'])
            receipts.append(float(key) + outputs['composite'] / 1000.0)
    receipts.sort()
    span = receipts[-1] - receipts[0] if len(receipts) > 1 else 0.0
    processing = stages.get('processing', float('nan'))
    return {'sent': sent, 'received': len(lat),
            'input_fps': sent / send_seconds if send_seconds > 0 else float('nan'),
            'output_fps': (len(receipts) - 1) / span if span > 0 else float('nan'),
            'latency_ms': benchmark.latency_summary(lat),
            'stage_ms': stages,
            'capacity_fps': 1000.0 / processing if processing and processing > 0
            else float('nan'),
            'process': usage}
