"""
The node under a hostile client's parameters, over real DDS (issue 19's attacks).

Each test starts ``matte_node`` in its own process and does what a client on the robot's
network could: point ``composite.image_path`` at a FIFO or at a PNG declaring 100 Mpx,
``models.model_path`` at a 200 GB sparse file or at a file to fingerprint,
``models.model_dir`` or ``tensorrt.engine_cache`` outside the cache (a symlink out of it,
/proc), send an EXIF-rotated JPEG, a megabyte-long value, a configure that downloads
slowly.  While a request is pending the test keeps asking
``get_state``: every query must be answered (a frozen executor answers none), the request
itself must be answered with a refusal that names the reason, and the node must serve
frames afterwards.  The bound on one ``get_state`` answer here is 1 s, generous for a
shared CI machine; the reliability scenario ``hostile`` reports the latencies measured.
"""

import hashlib
import http.server
import os
import socketserver
import threading
import time

from builtin_interfaces.msg import Time
from hostile_files import exif_jpeg
from hostile_files import fifo
from hostile_files import huge_png
from hostile_files import sparse_file
from lifecycle_msgs.srv import ChangeState
from lifecycle_msgs.srv import GetState
from matte_ros.measure import process_probe
from matte_ros.measure import processes
from matte_ros.ros.lifecycle_client import parameter_msg
import numpy as np
import pytest
from rcl_interfaces.srv import SetParameters
import rclpy
from rclpy.qos import QoSProfile
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header
from test_node_dds import frames
from test_node_dds import Graph
from test_node_dds import NS
from test_node_dds import TARGET

pytestmark = [pytest.mark.dds, pytest.mark.ros_integration]

#: Longest a get_state answer may take while an attack is pending (s).
ANSWER_LIMIT = 1.0
#: Longest the attacking request itself may take to be answered (s).
REQUEST_LIMIT = 20.0
RVM_MODEL_BYTES = 14975696


class Attack:
    """Send one slow request and keep querying ``get_state`` until it is answered."""

    def __init__(self, node):
        self.node = node
        self.state_client = node.create_client(GetState, TARGET + '/get_state')
        assert self.state_client.wait_for_service(timeout_sec=20.0)

    def probe(self, future, limit=REQUEST_LIMIT):
        """Return (response or None, get_state latencies) while ``future`` is pending."""
        latencies = []
        end = time.monotonic() + limit
        while not future.done() and time.monotonic() < end:
            start = time.monotonic()
            query = self.state_client.call_async(GetState.Request())
            while not query.done() and time.monotonic() - start < 5.0:
                rclpy.spin_once(self.node, timeout_sec=0.01)
            latencies.append(time.monotonic() - start if query.done() else float('inf'))
            if not query.done():
                self.state_client.remove_pending_request(query)
            pause = time.monotonic() + 0.05
            while not future.done() and time.monotonic() < pause:
                rclpy.spin_once(self.node, timeout_sec=0.01)
        return (future.result() if future.done() else None), latencies

    def set_parameters(self, values, limit=REQUEST_LIMIT):
        """Set ``values`` (in order) and probe; return ([(ok, reason)] or None, latencies)."""
        client = self.node.create_client(SetParameters, TARGET + '/set_parameters')
        assert client.wait_for_service(timeout_sec=20.0)
        request = SetParameters.Request(
            parameters=[parameter_msg(k, v) for k, v in values.items()])
        response, latencies = self.probe(client.call_async(request), limit)
        results = None if response is None else [(r.successful, r.reason)
                                                 for r in response.results]
        return results, latencies

    def change_state(self, label, limit=REQUEST_LIMIT):
        """Request a transition by label and probe; return (success or None, latencies)."""
        client = self.node.create_client(ChangeState, TARGET + '/change_state')
        assert client.wait_for_service(timeout_sec=20.0)
        request = ChangeState.Request()
        request.transition.label = label
        response, latencies = self.probe(client.call_async(request), limit)
        return (None if response is None else response.success), latencies


def assert_answered(latencies):
    """Every get_state during the attack was answered within ANSWER_LIMIT."""
    assert latencies, 'no get_state query was made'
    slow = [round(t, 3) for t in latencies if t > ANSWER_LIMIT]
    assert not slow, 'get_state answers took %s s (of %d queries)' % (slow, len(latencies))


def diagnostics_value(g, key):
    """Return the node's latest /diagnostics value of ``key`` ('' before one arrives)."""
    for array in reversed(g.diagnostics):
        for status in array.status:
            if status.name.startswith(TARGET):
                return {kv.key: kv.value for kv in status.values}.get(key, '')
    return ''


def serves(g, sec):
    """Tell whether the active node turns two frames into outputs."""
    f0, f1 = frames(2)
    g.send(f0, sec)
    g.send(f1, sec + 1)
    return g.outputs_for(sec + 1)['mask'] is not None


def start(client_node, tmp_path, params, env=None):
    """Start the node with ``params`` (and extra environment); return the graph side."""
    full = dict(processes.isolated_env(int(os.environ['ROS_DOMAIN_ID'])))
    full.setdefault('PIP_NO_INDEX', '1')   # no registry download unless a test serves one
    full['XDG_CACHE_HOME'] = str(tmp_path / 'xdg')
    full.update(env or {})
    proc = processes.ManagedProcess(processes.node_command(namespace=NS, params=params),
                                    full, str(tmp_path / 'node.log'))
    g = Graph(client_node)
    g.proc = proc
    g.attack = Attack(client_node)
    return g


def activate(g):
    """Configure and activate, then wait for the image subscription."""
    assert g.lifecycle.change_state('configure')
    assert g.lifecycle.change_state('activate')
    g.wait_for_subscriber()


@pytest.fixture
def node(client_node, tmp_path):
    """Return a starter of nodes (framediff) with their cache in tmp_path; stop them after."""
    started = []

    def make(params=None, env=None):
        g = start(client_node, tmp_path, dict({'segmenter': 'framediff'}, **(params or {})),
                  env)
        started.append(g.proc)
        return g
    yield make
    for proc in started:
        proc.stop()


def test_fifo_background_is_refused_without_freezing(node, tmp_path):
    g = node()
    activate(g)
    pipe = fifo(str(tmp_path / 'picture.fifo'))
    results, latencies = g.attack.set_parameters({'composite.image_path': pipe,
                                                  'composite.mode': 'image'})
    assert results is not None, 'set_parameters never answered'
    assert results[0] == (True, '')   # a path alone loads nothing
    ok, reason = results[1]
    assert not ok and 'FIFO' in reason
    assert_answered(latencies)
    assert serves(g, 100)
    assert g.spin(5.0, lambda: 'FIFO' in diagnostics_value(g, 'last_reconfigure_error'))
    assert g.lifecycle.set_parameters({'composite.mode': 'blur'}) == [(True, '')]


def test_fifo_background_at_configure_fails_configure_only(node, tmp_path):
    pipe = fifo(str(tmp_path / 'picture.fifo'))
    g = node({'composite.mode': 'image', 'composite.image_path': pipe})
    assert g.lifecycle.state() == 'unconfigured'
    success, latencies = g.attack.change_state('configure')
    assert success is False, 'configure with a FIFO picture: %r' % success
    assert_answered(latencies)
    assert g.lifecycle.state() == 'unconfigured'
    assert 'FIFO' in g.proc.output()
    assert g.lifecycle.set_parameters({'composite.mode': 'blur'}) == [(True, '')]
    activate(g)
    assert serves(g, 110)


def test_png_declaring_100_megapixels_is_refused_from_its_header(node, tmp_path):
    g = node()
    activate(g)
    path = str(tmp_path / 'huge.png')
    huge_png(path, 10000, 10000)
    before = process_probe.sample(g.proc.proc.pid).rss_mb()
    results, latencies = g.attack.set_parameters({'composite.image_path': path,
                                                  'composite.mode': 'image'})
    assert results is not None
    ok, reason = results[1]
    assert not ok and '10000×10000' in reason and 'max_pixels' in reason
    assert_answered(latencies)
    grown = process_probe.sample(g.proc.proc.pid).rss_mb() - before
    assert grown < 100, 'resident memory grew by %.0f MB' % grown   # decoded: ~300 MB
    assert serves(g, 120)


def test_large_sparse_model_file_is_refused_unread(node, tmp_path):
    g = node({'models.auto_fetch': False})
    activate(g)
    big = sparse_file(str(tmp_path / 'big.onnx'), 200 * 1024 ** 3)
    results, latencies = g.attack.set_parameters({'models.model_path': big,
                                                  'segmenter': 'rvm'})
    assert results is not None, 'no answer: the node hashes 200 GB'
    ok, reason = results[1]
    assert not ok and 'bytes' in reason and 'allowed' in reason
    assert_answered(latencies)
    assert serves(g, 130)   # framediff still serves


def test_foreign_file_is_never_fingerprinted(node, tmp_path):
    g = node({'models.auto_fetch': False})
    activate(g)
    secret = tmp_path / 'secret'
    secret.write_bytes(b'password=hunter2\n')
    same_size = tmp_path / 'same_size.onnx'
    with open(same_size, 'wb') as out:   # the model's size, other bytes: it gets hashed
        out.write(b'\x01' * RVM_MODEL_BYTES)
    digests = {hashlib.sha256(secret.read_bytes()).hexdigest(),
               hashlib.sha256(same_size.read_bytes()).hexdigest()}
    reasons = []
    for path in (secret, same_size):
        results, latencies = g.attack.set_parameters({'models.model_path': str(path),
                                                      'segmenter': 'rvm'})
        assert results is not None
        ok, reason = results[1]
        assert not ok
        reasons.append(reason)
        assert_answered(latencies)
        assert g.lifecycle.set_parameters({'segmenter': 'framediff',
                                           'models.model_path': ''})[0][0]
    assert 'checksum does not match' in reasons[1]
    text = '\n'.join(reasons) + g.proc.output()
    for digest in digests:
        assert digest not in text, "a foreign file's sha256 was given out"
    assert serves(g, 140)


def test_model_dir_outside_the_cache_is_never_written(node, tmp_path):
    outside = tmp_path / 'outside' / 'models'
    g = node({'segmenter': 'rvm', 'models.auto_fetch': True,
              'models.model_dir': str(outside)})
    success, latencies = g.attack.change_state('configure')
    assert success is False
    assert_answered(latencies)
    assert 'outside the model cache' in g.proc.output()
    assert not os.path.exists(tmp_path / 'outside')
    assert g.lifecycle.set_parameters({'segmenter': 'framediff'}) == [(True, '')]
    activate(g)
    ok, reason = g.lifecycle.set_parameters({'models.model_dir': str(tmp_path / 'x')})[0]
    assert not ok and 'models.model_dir' in reason   # not while configured
    assert serves(g, 150)


def test_a_trace_planted_in_a_model_dir_outside_the_cache_is_never_loaded(node, tmp_path):
    # The attack: while the node is unconfigured, point models.model_dir at a folder the
    # attacker fills and ask for rvm.runtime torchscript: torch.jit.load would run the
    # planted archive.  The trace for 160×120 goes to (and comes from) the node's cache.
    torch = pytest.importorskip('torch')
    from matte_ros.segmenters import torchvision_ops
    torchvision_ops.import_torchvision()
    pytest.importorskip('onnx2torch')
    from conftest import shared_path
    from matte_ros import models
    rvm_file = shared_path('models', 'rvm_mobilenetv3_fp32.onnx')

    class Planted(torch.nn.Module):
        """Alpha 0.25 everywhere; the state passes through."""

        def forward(self, src, r1, r2, r3, r4):
            return src, torch.full_like(src[:, :1], 0.25), r1, r2, r3, r4

    outside = tmp_path / 'opt-models'
    name = 'rvm_mobilenetv3_fp32.%s.160x120.ratio-1.000000.cpu.pt' % (
        models.get('rvm_mobilenetv3_fp32').sha256[:16])
    (outside / 'torchscript').mkdir(parents=True)
    torch.jit.save(torch.jit.script(Planted()), str(outside / 'torchscript' / name))
    listing = sorted(os.listdir(outside / 'torchscript'))
    g = node()
    assert g.lifecycle.state() == 'unconfigured'
    assert all(ok for ok, _ in g.lifecycle.set_parameters({
        'segmenter': 'rvm', 'rvm.runtime': 'torchscript', 'models.model_dir': str(outside),
        'models.model_path': rvm_file, 'models.auto_fetch': False}))
    assert g.lifecycle.change_state('configure', timeout=120.0)
    assert g.lifecycle.change_state('activate')
    g.wait_for_subscriber()
    f0, f1 = frames(2)
    g.send(f0, 160)
    g.send(f1, 161)
    out = g.outputs_for(161, timeout=120.0)
    assert out['alpha'] is not None, 'no output from rvm on torchscript'
    alpha = np.frombuffer(bytes(out['alpha'].data), np.uint8)
    assert not np.all(np.abs(alpha.astype(int) - 64) <= 1), 'the planted trace ran'
    assert sorted(os.listdir(outside / 'torchscript')) == listing   # nothing written there
    saved = tmp_path / 'xdg' / 'matte_ros' / 'models' / 'torchscript' / name
    assert saved.is_file() and (tmp_path / 'xdg' / 'matte_ros' / 'models' / 'torchscript' /
                                (name + models.SEAL_SUFFIX)).is_file()


def test_exif_rotated_jpeg_is_decoded_as_sent(node):
    g = node({'input_transport': 'compressed'})
    activate_compressed = g.node.create_publisher(
        CompressedImage, NS + '/image/compressed',
        QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
    assert g.lifecycle.change_state('configure') and g.lifecycle.change_state('activate')
    assert g.spin(20.0, lambda: activate_compressed.get_subscription_count() > 0)
    for i, frame in enumerate(frames(2)):
        msg = CompressedImage(header=Header(stamp=Time(sec=160 + i), frame_id='cam'),
                              format='jpeg', data=exif_jpeg(frame, orientation=6))
        activate_compressed.publish(msg)
        g.spin(0.3)
    out = g.outputs_for(161)
    assert out['mask'] is not None, 'the EXIF JPEG was rejected: %s' % g.proc.output()[-500:]
    assert (out['mask'].width, out['mask'].height) == (160, 120)


def test_megabyte_values_are_cut_in_replies_and_logs(node):
    g = node()
    activate(g)
    huge = 'x' * (1 << 20)
    results, latencies = g.attack.set_parameters({'segmenter': huge,
                                                  'composite.image_path': huge})
    assert results is not None
    assert not results[0][0] and len(results[0][1]) < 1000
    assert_answered(latencies)
    ok, reason = g.lifecycle.set_parameters({'composite.mode': 'image'})[0]
    assert not ok and len(reason) < 1000
    assert max(len(line) for line in g.proc.output().splitlines()) < 2000
    assert serves(g, 170)


class _SlowIndex(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    """A package index that answers every request with 404, after ``delay`` seconds."""

    delay = 3.0

    def do_GET(self):  # noqa: N802 - the name http.server calls
        time.sleep(self.delay)
        self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_index():
    """Serve a slow, empty package index on localhost; return its URL."""
    server = _SlowIndex(('127.0.0.1', 0), _SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield 'http://127.0.0.1:%d/simple' % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_slow_download_at_configure_and_reload_keeps_services_and_frames(node, slow_index):
    env = {'PIP_INDEX_URL': slow_index, 'PIP_NO_INDEX': '', 'PIP_RETRIES': '0',
           'PIP_TIMEOUT': '10'}
    g = node({'segmenter': 'rvm', 'models.auto_fetch': True}, env)
    start = time.monotonic()
    success, latencies = g.attack.change_state('configure', limit=60.0)
    assert success is False and time.monotonic() - start > _SlowHandler.delay
    assert 'pip download' in g.proc.output()
    assert_answered(latencies)
    assert len(latencies) >= 10   # queried throughout the download
    assert g.lifecycle.set_parameters({'segmenter': 'framediff'}) == [(True, '')]
    activate(g)
    client = g.node.create_client(SetParameters, TARGET + '/set_parameters')
    assert client.wait_for_service(timeout_sec=20.0)
    future = client.call_async(SetParameters.Request(
        parameters=[parameter_msg('segmenter', 'rvm')]))
    served = [serves(g, 180 + 2 * i) for i in range(3)]   # frames while it downloads
    assert not future.done(), 'the reload did not wait for its download'
    response, latencies = g.attack.probe(future, limit=60.0)
    assert all(served)
    assert response is not None and not response.results[0].successful
    assert 'pip download' in response.results[0].reason
    assert_answered(latencies)
    assert serves(g, 190)


def test_consensus_over_the_memory_budget_is_refused_with_the_figure(node):
    hd = 1920 * 1080
    g = node({'segmenter': 'bgsub', 'max_pixels': hd, 'memory_budget_mb': 400})
    activate(g)
    ok, reason = g.lifecycle.set_parameters({'bgsub.consensus.samples': 64})[0]
    assert not ok and 'memory_budget_mb 400' in reason and ' MB for max_pixels' in reason
    assert serves(g, 200)


def test_consensus_64_samples_at_1080p_stays_within_the_budget(node):
    """
    RSS of samples 64 and a 1080p frame stays within the (default) budget.

    The consensus model is set up in uint8 (samples × 3 bytes per pixel); a set-up
    through 64-bit index arrays of samples × H × W peaked at 3.2 GB here.
    """
    hd = 1920 * 1080
    g = node({'segmenter': 'bgsub', 'max_pixels': hd, 'bgsub.consensus.samples': 64})
    activate(g)
    budget = 3072
    frame = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), np.uint8)
    for i in range(2):
        g.send(frame, 210 + i)
        assert g.outputs_for(210 + i, timeout=30.0)['mask'] is not None
    with open('/proc/%d/status' % g.proc.proc.pid) as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith('VmHWM'))
    peak_mb = peak / 1024
    assert peak_mb < budget, 'peak RSS %.0f MB over the %d MB budget' % (peak_mb, budget)


def test_an_invalid_start_value_fails_configure_until_it_is_fixed(node):
    g = node({'segmenter': 'no_such_segmenter', 'qos.depth': 3})
    success, latencies = g.attack.change_state('configure')
    assert success is False
    assert 'no_such_segmenter' in g.proc.output()
    assert g.lifecycle.set_parameters({'segmenter': 'framediff'}) == [(True, '')]
    activate(g)
    assert serves(g, 220)


def test_engine_cache_leading_out_of_the_cache_is_refused_at_once(node, tmp_path):
    cache = tmp_path / 'xdg' / 'matte_ros'   # the node's user cache (XDG_CACHE_HOME)
    outside = tmp_path / 'outside'
    os.makedirs(cache, mode=0o700)
    os.symlink(outside, cache / 'link')
    hostile = [str(outside / 'engines'), str(cache / 'link' / 'engines'),
               str(cache / '..' / '..' / 'outside'), '/proc/self/cwd', '/dev/shm/engines']
    g = node({'tensorrt.engine_cache': hostile[0]})   # a start value: configure fails
    success, latencies = g.attack.change_state('configure')
    assert success is False
    assert_answered(latencies)
    assert 'tensorrt.engine_cache' in g.proc.output()
    for value in hostile:   # while unconfigured: the path rule
        results, latencies = g.attack.set_parameters({'tensorrt.engine_cache': value},
                                                     limit=ANSWER_LIMIT)
        assert results is not None, '%s: no answer within %.0f s' % (value, ANSWER_LIMIT)
        ok, reason = results[0]
        assert not ok and reason.startswith('tensorrt.engine_cache '), (value, reason)
        assert_answered(latencies)
    inside = str(cache / 'engines')
    assert g.lifecycle.set_parameters({'tensorrt.engine_cache': inside}) == [(True, '')]
    activate(g)
    for value in hostile[:2] + [str(cache / 'other')]:   # while configured: fixed
        results, latencies = g.attack.set_parameters({'tensorrt.engine_cache': value},
                                                     limit=ANSWER_LIMIT)
        assert results is not None, '%s: no answer within %.0f s' % (value, ANSWER_LIMIT)
        ok, reason = results[0]
        assert not ok and 'tensorrt.engine_cache' in reason, (value, reason)
        assert_answered(latencies)
    assert serves(g, 230)
    assert not os.path.exists(outside), 'something was written outside the cache'
