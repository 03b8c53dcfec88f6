"""
Reliability scenarios against the live node over DDS, and the report they make.

Each scenario starts ``matte_node`` in its own process (:class:`live_node.LiveNode`),
does to it what the field does (malformed messages, lifecycle churn, a long stream,
broken model files, a segmenter that throws, a publisher that dies, a parameter
storm, signals) and returns an :class:`Outcome`: figures for the report and a list of
*problems*, each a broken promise stated in words.  Sizes are arguments, so
``test/test_reliability.py`` runs small forms in ``make test`` and ::

    python test/reliability_scenarios.py --out docs/reliability.md

(``make reliability``) runs them at full size and writes the table.
"""

import argparse
from dataclasses import dataclass
from dataclasses import field
import hashlib
import os
import platform
import random
import shutil
import signal
import sys
import tempfile
import time
from typing import Any
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import GetState
from live_node import header
from live_node import LiveNode
from live_node import shared_model
from live_node import textured_frames
import malformed
from matte_ros.measure import process_probe
from matte_ros.measure import processes
from matte_ros.ros.image_msgs import make_image_msg
from matte_ros.ros.lifecycle_client import parameter_msg
import numpy as np
from rcl_interfaces.srv import SetParameters
import rclpy
import security_audit
from sensor_msgs.msg import Image

#: Largest growth of the node's resident memory a scenario tolerates (MiB).
RSS_LIMIT_MB = 10.0
#: Threads the node may gain without leaking (DDS and ONNX Runtime start some lazily).
#: A leak of one thread per cycle shows within a few cycles.
POOL_HEADROOM = 3
#: Seconds the node has to exit after SIGINT / SIGTERM.
EXIT_LIMIT = 5.0
#: Seconds between repeats of one warning in the node (matte_ros.ros.node.LOG_THROTTLE).
LOG_THROTTLE = 5.0
#: Where the model files of the neural scenarios are looked for.
RVM_MODEL = 'rvm_mobilenetv3_fp32.onnx'
SELFIE_MODEL = 'selfie_segmentation.tflite'
SELFIE_LANDSCAPE = 'selfie_segmentation_landscape.tflite'
#: Sizes of ``make reliability`` (full) and of ``make test`` (reduced).
FULL = {'messages': 10000, 'cycles': 200, 'soak_frames': 50000, 'storm_seconds': 10.0}
REDUCED = {'messages': 2000, 'cycles': 15, 'soak_frames': 800, 'storm_seconds': 2.0}


#: The promises each scenario checks, by its key in :func:`plan`: every check a scenario
#: makes is named here, and test/test_reliability.py asserts each one as its own test.
#: A check made more than once (once per state, signal, file or attack) holds when it
#: held every time; its failures say which.
CHECKS: Dict[str, Tuple[str, ...]] = {
    'bad_input': (
        'first frame answered', 'node alive', 'valid frames answered',
        'every message received', 'every bad message counted', 'reasons add up',
        'last reason in diagnostics', 'max_pixels named', 'no output from bad messages',
        'valid frames processed', 'log throttled', 'RSS flat', 'five reason kinds or more'),
    'lifecycle': ('every cycle succeeds', 'node alive', 'RSS flat', 'threads back',
                  'fds back'),
    'shutdown': ('reaches each state', 'shutdown finalizes', 'node alive',
                 'SIGINT exits 0 in time'),
    'signals': ('processes before the signal', 'exit code 0', 'exits in time'),
    'soak': ('node alive', 'never stuck', 'every frame received', 'outputs match processed',
             'RSS flat'),
    'model_files': ('takes the cache folder', 'configure fails', 'node alive',
                    'back in unconfigured', 'log says what and where',
                    'configure succeeds once fixed'),
    'segmenter_exception': (
        'first frame answered', 'frame after the fault answered', 'next frame answered',
        'no output for the faulty frame', 'fault counted once', 'other frames processed',
        'last failure in diagnostics', 'node alive'),
    'publisher_restart': ('first publisher served', 'outputs resume', 'node alive'),
    'parameter_storm': (
        'node alive', 'every request answered', 'every answer right', 'frames flow',
        'both kinds sent', 'holds the last accepted values',
        'composite shows the last colour'),
    'hostile': (
        'every attack answered', 'get_state answers in time', 'refused with its reason',
        'replies short', 'frames flow after each', 'RSS flat', 'no foreign sha256 given out',
        'nothing written outside the cache', 'log lines short',
        'slow reload refused with its download error',
        'slow reload answers after its download', 'get_state answers during the slow reload',
        'frames served during the slow reload'),
    'security': ('the package audited', 'no unpickling or shell'),
}


@dataclass
class Outcome:
    """
    What one scenario measured, and which promises it found broken.

    ``checks`` maps each named check made to its failures (empty: it held);
    ``problems`` lists every failure in the order found, after its check's name.
    ``declared``: the names the scenario may use (:data:`CHECKS`); another name is a bug
    in the scenario.
    """

    name: str
    figures: Dict[str, Any] = field(default_factory=dict)
    problems: List[str] = field(default_factory=list)
    skipped: str = ''
    seconds: float = 0.0
    declared: Tuple[str, ...] = ()
    checks: Dict[str, List[str]] = field(default_factory=dict)

    def check(self, name: str, ok: bool, problem: str) -> bool:
        """Record the check ``name``: held, or broken with ``problem``; return ``ok``."""
        if self.declared and name not in self.declared:
            raise KeyError('check %r of scenario %r is not declared in CHECKS'
                           % (name, self.name))
        failures = self.checks.setdefault(name, [])
        if not ok:
            failures.append(problem)
            self.problems.append('%s: %s' % (name, problem))
        return ok

    @property
    def passed(self) -> bool:
        """Tell whether nothing was broken (a skipped scenario did not pass)."""
        return not self.problems and not self.skipped


class Bench:
    """
    What scenarios share: the client node, the isolated environment and a log folder.

    ``client`` is an rclpy node of this process; every node started gets its own
    namespace, so scenarios cannot hear each other's topics.
    """

    def __init__(self, client, env: Dict[str, str], log_dir: str):
        self.client = client
        self.env = env
        self.log_dir = log_dir
        self._count = 0
        self._started: List[LiveNode] = []

    def start(self, params: Dict[str, Any], **kwargs) -> LiveNode:
        """Start a node with ``params`` (plus LiveNode keyword arguments)."""
        self._count += 1
        namespace = '/rel%d_%d' % (os.getpid() % 10000, self._count)
        log = os.path.join(self.log_dir, 'node%d.log' % self._count)
        node = LiveNode(self.client, namespace, params, self.env, log, **kwargs)
        self._started.append(node)
        return node

    def close(self) -> None:
        """Stop every node still running."""
        for node in self._started:
            if node.alive():
                node.stop()
        self._started = []


def _growth_mb(before: process_probe.Usage, after: process_probe.Usage) -> float:
    return (after.rss_kb - before.rss_kb) / 1024.0


def _image(fields: Dict[str, Any], sec: int) -> Image:
    msg = Image(height=fields['height'], width=fields['width'], encoding=fields['encoding'],
                is_bigendian=fields['is_bigendian'], step=fields['step'])
    msg.header = header(sec, 0, 'malformed')
    msg.data = fields['data']
    return msg


# --- 1. bad input ------------------------------------------------------------------------

def bad_input(bench: Bench, messages: int = 10000, seed: int = 0, max_pixels: int = 4096,
              batch: int = 80) -> Outcome:
    """
    Send ``messages`` malformed images; each must be rejected, counted, with a reason.

    After every ``batch`` bad messages a valid frame follows; its output must come back
    (the node still works), and since one publisher's messages arrive in order it also
    marks that every earlier bad message went through the node's input check.
    """
    out = Outcome('bad input', declared=CHECKS['bad_input'])
    node = bench.start({'segmenter': 'framediff', 'qos.input_reliability': 'reliable',
                        'qos.depth': 100, 'diagnostics_period': 0.1,
                        'max_pixels': max_pixels}, input_reliable=True, depth=100)
    node.configure_activate()
    good = textured_frames(2, 48, 64)
    sec = 1
    node.send(good[0], sec)
    out.check('first frame answered', node.wait_output(sec), 'the first valid frame got no output')
    before = node.usage()
    bad = valid = missed = 0
    start = time.monotonic()
    over_limit = 0
    for fields in malformed.generate(messages, seed, max_pixels):
        node.publisher.publish(_image(fields, 0))
        bad += 1
        over_limit += fields['kind'] == 'max_pixels'
        if bad % batch == 0 or bad == messages:
            sec += 1
            node.send(good[sec % 2], sec)
            valid += 1
            if not node.wait_output(sec, timeout=30.0):
                missed += 1
            if not node.alive():
                break
    elapsed = time.monotonic() - start
    total = bad + valid + 1
    # The processed counter is bumped after the outputs go out: wait for it as well.
    node.wait_diagnostics(lambda n: n.counter('received') >= total
                          and n.counter('rejected') >= bad
                          and n.counter('processed') >= valid + 1, timeout=20.0)
    after = node.usage() if node.alive() else before
    diag = dict(node.diagnostics)
    reasons = {k[len('rejected['):-1]: int(v) for k, v in diag.items()
               if k.startswith('rejected[')}
    log_lines = node.output().count('rejected image:')
    alive = node.alive()
    out.check('node alive', alive, 'the node died:\n' + node.log_tail())
    out.check('valid frames answered',
              missed == 0, '%d of %d valid frames after bad ones got no output'
              % (missed, valid))
    out.check('every message received',
              node.counter('received') == total, 'node received %d messages, %d were sent'
              % (node.counter('received'), total))
    out.check('every bad message counted',
              node.counter('rejected') == bad, 'node counted %d rejections for %d bad '
              'messages' % (node.counter('rejected'), bad))
    out.check('reasons add up',
              sum(reasons.values()) == bad, 'rejection reasons add up to %d, not %d: %s'
              % (sum(reasons.values()), bad, reasons))
    out.check('last reason in diagnostics',
              bool(diag.get('last_reject_reason')), 'no last_reject_reason in diagnostics')
    by_limit = sum(n for k, n in reasons.items() if 'max_pixels' in k)
    out.check('max_pixels named',
              by_limit >= over_limit, '%d refusals name max_pixels, %d well-formed images '
              'above it were sent' % (by_limit, over_limit))
    out.check('no output from bad messages',
              not node.got(0), 'a malformed message produced an output')
    out.check('valid frames processed',
              node.counter('processed') == valid + 1, 'processed %d of %d valid frames'
              % (node.counter('processed'), valid + 1))
    allowed = int(elapsed / LOG_THROTTLE) + 3
    out.check('log throttled',
              log_lines <= allowed, '%d rejection log lines in %.0f s: not throttled'
              % (log_lines, elapsed))
    growth = _growth_mb(before, after)
    out.check('RSS flat', growth <= RSS_LIMIT_MB, 'RSS grew by %.1f MB' % growth)
    out.check('five reason kinds or more', len(reasons) >= 5,
              'only %d kinds of rejection reasons: %s' % (len(reasons), sorted(reasons)))
    out.figures.update({
        'malformed messages sent': bad, 'valid frames between them': valid + 1,
        'rejected (counted)': node.counter('rejected'), 'reason kinds': len(reasons),
        'refused by max_pixels (of them well formed)': '%d (%d)' % (by_limit, over_limit),
        'crashes': 0 if alive else 1, 'valid frames without output': missed,
        'rejection log lines': log_lines, 'RSS growth (MB)': round(growth, 1),
        'messages/s': round(bad / max(elapsed, 1e-9))})
    node.stop()
    return out


# --- 2. lifecycle ------------------------------------------------------------------------

def _settle(node: LiveNode, baseline: process_probe.Usage, seconds: float = 5.0):
    """Sample the node until threads and fds are back at ``baseline`` or time is up."""
    usage = node.usage()
    end = time.monotonic() + seconds
    while time.monotonic() < end and (usage.threads > baseline.threads + POOL_HEADROOM
                                      or usage.fds > baseline.fds):
        node.spin(0.2)
        usage = node.usage()
    return usage


def lifecycle_cycles(bench: Bench, cycles: int = 200, warmup: int = 3) -> Outcome:
    """
    Configure, activate, process a frame, deactivate, clean up — ``cycles`` times.

    Resident memory may grow by at most :data:`RSS_LIMIT_MB` after ``warmup`` cycles
    (first imports, allocator pools); open fds must come back exactly, threads within
    the executor's lazily started pool (:data:`POOL_HEADROOM`).
    """
    out = Outcome('lifecycle cycles', declared=CHECKS['lifecycle'])
    node = bench.start({'segmenter': 'bgsub', 'qos.input_reliability': 'reliable',
                        'qos.depth': 10}, input_reliable=True)
    frame = textured_frames(1, 120, 160)[0]
    baseline = None
    done = 0
    threads = []
    start = time.monotonic()
    for i in range(cycles):
        steps = []
        for transition in ('configure', 'activate'):
            steps.append((transition, node.lifecycle.change_state(transition)))
        if all(ok for _, ok in steps):
            node.wait_for_subscriber()
            node.send(frame, 1 + i)
            steps.append(('frame', node.wait_output(1 + i)))
        for transition in ('deactivate', 'cleanup'):
            steps.append((transition, node.lifecycle.change_state(transition)))
        failed = [name for name, ok in steps if not ok]
        if not out.check('every cycle succeeds',
                         not failed, 'cycle %d: %s failed' % (i + 1, ', '.join(failed))):
            break
        done += 1
        threads.append(process_probe.threads(node.pid))
        if done == min(warmup, cycles):
            node.spin(0.5)
            baseline = node.usage()
    elapsed = time.monotonic() - start
    final = _settle(node, baseline) if baseline else node.usage()
    baseline = baseline or final
    growth = _growth_mb(baseline, final)
    out.check('node alive', node.alive(), 'the node died:\n' + node.log_tail())
    out.check('RSS flat',
              growth <= RSS_LIMIT_MB, 'RSS grew by %.1f MB over %d cycles' % (growth, done))
    out.check('threads back',
              final.threads <= baseline.threads + POOL_HEADROOM, 'threads: %d after, %d at '
              'baseline' % (final.threads, baseline.threads))
    out.check('fds back', final.fds == baseline.fds, 'open fds: %d after, %d at baseline'
              % (final.fds, baseline.fds))
    out.figures.update({
        'cycles': done, 'RSS baseline (MB)': round(baseline.rss_mb(), 1),
        'RSS growth (MB)': round(growth, 1),
        'threads baseline/after': '%d/%d' % (baseline.threads, final.threads),
        'threads min/max over cycles': '%d/%d' % (min(threads), max(threads))
        if threads else '',
        'fds baseline/after': '%d/%d' % (baseline.fds, final.fds),
        'seconds per cycle': round(elapsed / max(done, 1), 2)})
    node.stop()
    return out


SHUTDOWN = {'unconfigured': Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
            'inactive': Transition.TRANSITION_INACTIVE_SHUTDOWN,
            'active': Transition.TRANSITION_ACTIVE_SHUTDOWN}


def _wait_exit(node: LiveNode, limit: float, feed: Optional[Callable[[], None]] = None):
    """Wait for the process to end (calling ``feed`` meanwhile); return (code, seconds)."""
    start = time.monotonic()
    while node.process.proc.poll() is None and time.monotonic() - start < 2 * limit:
        if feed is not None:
            feed()
        node.spin(0.02)
    seconds = time.monotonic() - start
    return node.process.proc.poll(), seconds


def shutdown_every_state(bench: Bench) -> Outcome:
    """Shut down from unconfigured, inactive and active (processing); then SIGINT exits 0."""
    out = Outcome('shutdown from every state', declared=CHECKS['shutdown'])
    frame = textured_frames(1, 120, 160)[0]
    for state, transition in SHUTDOWN.items():
        node = bench.start({'segmenter': 'framediff'})
        if state != 'unconfigured':
            node.lifecycle.change_state('configure')
        if state == 'active':
            node.lifecycle.change_state('activate')
            node.wait_for_subscriber()
            for i in range(5):
                node.send(frame, 1 + i)
                node.spin(0.05)
        reached = node.lifecycle.state()
        ok = node.lifecycle.change_state(transition)
        final = node.lifecycle.state() if node.alive() else 'dead'
        out.check('reaches each state',
                  reached == state, 'could not reach %s (got %s)' % (state, reached))
        out.check('shutdown finalizes',
                  ok and final == 'finalized', 'shutdown from %s: success=%s, state %s'
                  % (state, ok, final))
        out.check('node alive', node.alive(), 'the node died on shutdown from %s' % state)
        node.process.proc.send_signal(signal.SIGINT)
        code, seconds = _wait_exit(node, EXIT_LIMIT)
        out.check('SIGINT exits 0 in time',
                  code == 0 and seconds <= EXIT_LIMIT, 'after shutdown from %s, SIGINT: '
                  'exit code %s after %.1f s\n%s' % (state, code, seconds, node.log_tail()))
        out.figures['from %s: exit after SIGINT (s)' % state] = round(seconds, 2)
        node.stop()
    return out


def signals(bench: Bench, signums=(signal.SIGINT, signal.SIGTERM)) -> Outcome:
    """
    Send SIGINT / SIGTERM while frames stream in and the segmenter is busy.

    With the RVM model at hand the node runs rvm on 320×240 (its inference fills the
    node's time, so the signal lands mid-inference); otherwise bgsub.  The node lets the
    frame in progress finish before it exits, so the exit time is the rest of one
    inference plus the teardown.
    """
    out = Outcome('SIGINT/SIGTERM while processing', declared=CHECKS['signals'])
    model = shared_model(RVM_MODEL)
    params = {'segmenter': 'rvm', 'models.model_path': model, 'models.auto_fetch': False,
              'diagnostics_period': 0.2} if model else {'segmenter': 'bgsub',
                                                        'diagnostics_period': 0.2}
    out.figures['segmenter'] = params['segmenter']
    frames = textured_frames(4, 240, 320)
    for signum in signums:
        name = signal.Signals(signum).name
        node = bench.start(params)
        node.configure_activate()
        msgs = [make_image_msg(header(0), f, 'bgr8') for f in frames]
        sent = [0]

        def feed():
            sent[0] += 1
            msg = msgs[sent[0] % len(msgs)]
            msg.header = header(1 + sent[0])
            node.publisher.publish(msg)

        end = time.monotonic() + 60.0
        while node.counter('processed') < 3 and time.monotonic() < end:
            feed()
            node.spin(0.05)
        busy = (float(node.diagnostics.get('mean_processing_ms', 0))
                * float(node.diagnostics.get('output_rate_hz', 0)) / 1000.0)
        out.check('processes before the signal',
                  node.counter('processed') >= 3, '%s: the node processed nothing before '
                  'the signal' % name)
        node.process.proc.send_signal(signum)
        code, seconds = _wait_exit(node, EXIT_LIMIT, feed)
        out.check('exit code 0', code == 0, '%s: exit code %s\n%s' % (name, code, node.log_tail()))
        out.check('exits in time', seconds <= EXIT_LIMIT, '%s: exit took %.1f s' % (name, seconds))
        out.figures['%s exit code' % name] = code
        out.figures['%s exit (s)' % name] = round(seconds, 2)
        out.figures['%s busy fraction before' % name] = round(min(busy, 1.0), 2)
        node.stop()
    return out


# --- 3. soak -----------------------------------------------------------------------------

def soak(bench: Bench, frames: int = 50000, height: int = 240, width: int = 320,
         segmenter: str = 'bgsub', window: int = 2, samples: int = 50,
         stall: float = 20.0) -> Outcome:
    """
    Stream ``frames`` frames, at most ``window`` in flight; nothing may leak or stick.

    Checks: every frame sent reached the node, outputs received = frames processed on
    every topic, no output gap longer than ``stall`` s (a stuck worker), resident memory
    flat after the first tenth (≤ :data:`RSS_LIMIT_MB`).
    """
    out = Outcome('soak %dx%d' % (width, height), declared=CHECKS['soak'])
    node = bench.start({'segmenter': segmenter, 'qos.input_reliability': 'reliable',
                        'qos.output_reliability': 'reliable', 'qos.depth': 100},
                       input_reliable=True, depth=10)
    node.configure_activate()
    msgs = [make_image_msg(header(0), f, 'bgr8')
            for f in textured_frames(16, height, width)]
    every = max(1, frames // samples)
    warm = max(every, frames // 10)
    usage = []
    sent = 0
    stuck = False
    start = last_progress = time.monotonic()
    seen = 0
    while sent < frames:
        done = min(node.counts.values())   # the last output of a frame is out
        if done != seen:
            seen, last_progress = done, time.monotonic()
        if sent - done < window:
            msg = msgs[sent % len(msgs)]
            msg.header = header(1000 + sent // 100, (sent % 100) * 10000000)
            node.publisher.publish(msg)
            sent += 1
            if sent % every == 0:
                usage.append((sent, node.usage()))
            rclpy.spin_once(node.client, timeout_sec=0)
        else:
            rclpy.spin_once(node.client, timeout_sec=0.01)
            if time.monotonic() - last_progress > stall:
                stuck = True
                break
    elapsed = time.monotonic() - start
    node.wait_diagnostics(lambda n: n.counter('received') >= sent and n.counter(
        'processed') + n.counter('dropped') + n.counter('failed') >= n.counter('received'),
        timeout=30.0)
    processed = node.counter('processed')
    node.spin(30.0, lambda: all(c >= processed for c in node.counts.values()))
    out.check('node alive', node.alive(), 'the node died:\n' + node.log_tail())
    out.check('never stuck',
              not stuck, 'no output for %.0f s after %d frames: worker stuck' % (stall, sent))
    out.check('every frame received',
              node.counter('received') == sent, 'node received %d of %d frames'
              % (node.counter('received'), sent))
    for topic, count in node.counts.items():
        out.check('outputs match processed',
                  count == processed, '%d %s outputs for %d processed frames'
                  % (count, topic, processed))
    after_warm = [u for n, u in usage if n >= warm]
    growth = 0.0
    if after_warm:
        growth = (max(u.rss_kb for u in after_warm) - after_warm[0].rss_kb) / 1024.0
    out.check('RSS flat', growth <= RSS_LIMIT_MB, 'RSS grew by %.1f MB after warm-up' % growth)
    out.figures.update({
        'frames sent': sent, 'processed': processed, 'dropped': node.counter('dropped'),
        'failed': node.counter('failed'),
        'outputs (mask/alpha/composite)': '/'.join(str(c) for c in node.counts.values()),
        'fps': round(sent / max(elapsed, 1e-9), 1),
        'RSS after warm-up (MB)': round(after_warm[0].rss_mb(), 1) if after_warm else '',
        'RSS growth after warm-up (MB)': round(growth, 1),
        'threads first/last': '%d/%d' % (usage[0][1].threads, usage[-1][1].threads)
        if usage else ''})
    node.stop()
    return out


# --- 4. faults ---------------------------------------------------------------------------

def model_files(bench: Bench, work_dir: str) -> Outcome:
    """
    Missing, truncated and wrong model files: configure FAILURE naming what and where.

    Uses the selfie segmenter (LiteRT): its 256×256 model, and the landscape 144×256
    model as the file of the wrong shape.  After each failure the node must still be
    up and unconfigured; once the right file is in place, configure succeeds.
    """
    out = Outcome('broken model files', declared=CHECKS['model_files'])
    good_src, wrong_src = shared_model(SELFIE_MODEL), shared_model(SELFIE_LANDSCAPE)
    if not (good_src and wrong_src):
        out.skipped = 'needs ../shared/models/%s and %s' % (SELFIE_MODEL, SELFIE_LANDSCAPE)
        return out
    with open(good_src, 'rb') as stream:
        good = stream.read()
    with open(wrong_src, 'rb') as stream:
        wrong = stream.read()
    path = os.path.join(work_dir, 'robot_models', 'selfie.tflite')
    cache = os.path.join(work_dir, 'robot_cache')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.makedirs(cache, exist_ok=True)
    node = bench.start({'segmenter': 'selfie', 'models.auto_fetch': False,
                        'models.model_path': path})
    cases = [('missing', path, None, 'does not exist'),
             ('truncated', path, good[:len(good) // 2], 'bytes'),
             ('wrong shape (landscape model)', path, wrong, 'selfie_landscape'),
             ('truncated in the cache', os.path.join(cache, SELFIE_MODEL),
              good[:1000], 'corrupt')]
    for label, where, content, what in cases:
        if where != path:
            results = node.lifecycle.set_parameters({'models.model_path': '',
                                                     'models.model_dir': cache})
            out.check('takes the cache folder',
                      all(ok for ok, _ in results), 'could not point the node at the cache: '
                      '%s' % results)
        if content is None:
            if os.path.exists(where):
                os.unlink(where)
        else:
            with open(where, 'wb') as stream:
                stream.write(content)
        logged = len(node.output())
        ok = node.lifecycle.change_state('configure')
        node.spin(0.5)
        log = node.output()[logged:]
        line = next((x for x in log.splitlines() if 'configure failed' in x), '')
        out.check('configure fails', not ok, '%s: configure succeeded' % label)
        out.check('node alive', node.alive(), '%s: the node died' % label)
        out.check('back in unconfigured',
                  node.alive() and node.lifecycle.state() == 'unconfigured',
                  '%s: not back in unconfigured' % label)
        out.check('log says what and where',
                  where in line and what in line, '%s: the log line does not say what (%r) '
                  'and where (%s): %r' % (label, what, where, line))
        out.figures['%s → configure' % label] = 'FAILURE' if not ok else 'SUCCESS'
        with open(where, 'wb') as stream:   # fix the file
            stream.write(good)
        fixed = node.lifecycle.change_state('configure')
        out.check('configure succeeds once fixed',
                  fixed, '%s: configure failed after the file was fixed:\n%s'
                  % (label, node.log_tail()))
        out.figures['%s, fixed → configure' % label] = 'SUCCESS' if fixed else 'FAILURE'
        if fixed:
            node.lifecycle.change_state('cleanup')
        if where == path:
            os.unlink(path)
    node.stop()
    return out


def _rvm_fault_is_real(model: str) -> bool:
    """Tell whether RVM really raises on a 1×1000 frame (checked with the core Pipeline)."""
    import numpy as np
    from matte_ros.pipeline import Pipeline
    pipeline = Pipeline({'segmenter': 'rvm', 'models.model_path': model,
                         'models.auto_fetch': False})
    try:
        pipeline.process(np.zeros((1, 1000, 3), np.uint8), 0.0, 'probe')
    except Exception:  # noqa: B902 - any exception is the fault we want
        return True
    finally:
        pipeline.close()
    return False


def segmenter_exception(bench: Bench) -> Outcome:
    """
    Check that a frame the segmenter throws on is dropped, counted, and the node goes on.

    The fault is real, not injected: RVM's encoder cannot take a 1×1000 frame (the
    automatic downsample ratio makes its height 0 and ONNX Runtime raises).
    """
    out = Outcome('exception in the segmenter', declared=CHECKS['segmenter_exception'])
    model = shared_model(RVM_MODEL)
    if not model:
        out.skipped = 'needs ../shared/models/%s' % RVM_MODEL
        return out
    if not _rvm_fault_is_real(model):
        out.skipped = 'rvm does not fail on a 1×1000 frame: no real segmenter fault known'
        return out
    node = bench.start({'segmenter': 'rvm', 'models.model_path': model,
                        'models.auto_fetch': False, 'qos.input_reliability': 'reliable',
                        'qos.depth': 10, 'diagnostics_period': 0.2}, input_reliable=True)
    node.configure_activate()
    frames = textured_frames(3, 120, 160)
    thin = textured_frames(1, 1, 1000)[0]
    node.send(frames[0], 1)
    out.check('first frame answered',
              node.wait_output(1, timeout=60.0), 'no output for the first frame')
    node.send(thin, 2)
    node.wait_diagnostics(lambda n: n.counter('failed') >= 1, timeout=30.0)
    node.send(frames[1], 3)
    out.check('frame after the fault answered',
              node.wait_output(3, timeout=60.0), 'no output after the failing frame')
    node.send(frames[2], 4)
    out.check('next frame answered',
              node.wait_output(4, timeout=60.0), 'no output for the frame after that')
    node.wait_diagnostics(lambda n: n.counter('processed') >= 3)
    out.check('no output for the faulty frame',
              not node.got(2), 'the failing frame produced an output')
    out.check('fault counted once',
              node.counter('failed') == 1, 'failed = %d, expected 1' % node.counter('failed'))
    out.check('other frames processed',
              node.counter('processed') == 3, 'processed = %d, expected 3'
              % node.counter('processed'))
    reason = node.diagnostics.get('last_failure', '')
    out.check('last failure in diagnostics', bool(reason), 'no last_failure in diagnostics')
    out.check('node alive', node.alive(), 'the node died:\n' + node.log_tail())
    out.figures.update({'failed frames counted': node.counter('failed'),
                        'frames processed around it': node.counter('processed'),
                        'last_failure': reason[:60]})
    node.stop()
    return out


def publisher_restart(bench: Bench, rate: float = 15.0, frames: int = 60) -> Outcome:
    """Kill the camera process (SIGKILL) mid-stream and start another: outputs resume."""
    out = Outcome('publisher killed and restarted', declared=CHECKS['publisher_restart'])
    node = bench.start({'segmenter': 'framediff'})
    node.configure_activate()

    def player(tag):
        argv = [sys.executable, '-m', 'matte_ros.measure.player', '--source', 'demo',
                '--topic', node.namespace + '/image', '--rate', str(rate),
                '--count', str(frames)]
        log = os.path.join(bench.log_dir,
                           'player_%s_%s.log' % (node.namespace.strip('/'), tag))
        return processes.ManagedProcess(argv, bench.env, log)

    first = player('a')
    got_first = node.spin(60.0, lambda: node.counts['mask'] >= 5)
    first.proc.kill()
    first.proc.wait()
    first.stop()
    node.spin(1.0)
    at_kill = node.counts['mask']
    node.spin(2.0)
    quiet = node.counts['mask'] - at_kill
    second = player('b')
    resumed = node.spin(60.0, lambda: node.counts['mask'] >= at_kill + quiet + 5)
    second.stop()
    out.check('first publisher served', got_first, 'no outputs from the first publisher')
    out.check('outputs resume', resumed, 'no outputs after the publisher was restarted (%d before)'
              % node.counts['mask'])
    out.check('node alive', node.alive(), 'the node died:\n' + node.log_tail())
    out.figures.update({'outputs before the kill': at_kill,
                        'outputs after the restart': node.counts['mask'] - at_kill - quiet})
    node.stop()
    return out


#: (parameter, value, should be accepted) drawn by :func:`parameter_storm`.
def _storm_plan(rng: random.Random):
    choice = rng.random()
    if choice < 0.2:
        return 'threshold', round(rng.uniform(0.05, 0.95), 3), True
    if choice < 0.4:
        return 'composite.color', [rng.randint(0, 255) for _ in range(3)], True
    if choice < 0.5:
        return 'mask.dilate', rng.randint(0, 5), True
    if choice < 0.6:
        return 'composite.blur_kernel', 2 * rng.randint(0, 40) + 1, True
    return rng.choice((
        ('threshold', 1.5, False), ('threshold', -0.25, False), ('threshold', 'high', False),
        ('composite.blur_kernel', 40, False), ('composite.color', [300, 0, 0], False),
        ('composite.color', [1, 2], False), ('segmenter', 'no_such', False),
        ('composite.mode', 'sparkle', False), ('mask.dilate', 65, False),
        ('qos.depth', 5, False), ('no_such.parameter', 1, False)))


def parameter_storm(bench: Bench, seconds: float = 10.0, rate: float = 100.0,
                    seed: int = 0) -> Outcome:
    """
    Set parameters ``rate`` times a second while frames are processed.

    Every request must be answered; valid values accepted and then held by the node
    (``get_parameters``; the last colour shows in the composite), invalid ones refused
    with a reason; frames keep flowing.
    """
    out = Outcome('parameter storm', declared=CHECKS['parameter_storm'])
    node = bench.start({'segmenter': 'framediff', 'composite.mode': 'color',
                        'qos.input_reliability': 'reliable', 'qos.depth': 10},
                       input_reliable=True)
    node.configure_activate()
    client = bench.client.create_client(SetParameters, node.target + '/set_parameters')
    client.wait_for_service(timeout_sec=20.0)
    rng = random.Random(seed)
    frames = textured_frames(2, 120, 160)
    pending = []
    sec = 0
    start = time.monotonic()
    next_set = next_frame = start
    while time.monotonic() - start < seconds:
        now = time.monotonic()
        if now >= next_set:
            name, value, valid = _storm_plan(rng)
            request = SetParameters.Request(parameters=[parameter_msg(name, value)])
            pending.append((name, value, valid, client.call_async(request)))
            next_set += 1.0 / rate
        if now >= next_frame:
            sec += 1
            node.send(frames[sec % 2], sec)
            next_frame += 1.0 / 30.0
        rclpy.spin_once(bench.client, timeout_sec=0.001)
    elapsed = time.monotonic() - start
    node.spin(30.0, lambda: all(f.done() for *_, f in pending))
    frames_during = node.counts['mask']
    unanswered = sum(1 for *_, f in pending if not f.done())
    wrong = []
    last = {}
    accepted = rejected = 0
    for name, value, valid, future in pending:
        if not future.done():
            continue
        result = future.result().results[0]
        if result.successful:
            accepted += 1
            last[name] = value
        else:
            rejected += 1
        if result.successful != valid or (not result.successful and not result.reason):
            wrong.append('%s=%r: successful=%s reason=%r'
                         % (name, value, result.successful, result.reason))
    out.check('node alive', node.alive(), 'the node died:\n' + node.log_tail())
    out.check('every request answered',
              unanswered == 0, '%d of %d requests never answered' % (unanswered, len(pending)))
    out.check('every answer right',
              not wrong, '%d wrong answers, e.g. %s' % (len(wrong), wrong[:3]))
    out.check('frames flow', frames_during > 0, 'no frame processed during the storm')
    out.check('both kinds sent', accepted > 0 and rejected > 0, '%d accepted, %d refused: '
              'the storm must send valid and invalid values' % (accepted, rejected))
    held = node.get_parameters(sorted(last)) if node.alive() else {}
    differ = []
    for name, value in last.items():
        got = held.get(name)
        same = (abs(got - value) < 1e-9) if isinstance(value, float) else got == value
        if not same:
            differ.append('%s: node holds %r, last accepted %r' % (name, got, value))
    out.check('holds the last accepted values', bool(last) and not differ,
              '; '.join(differ) or 'no value was accepted')
    pixel = None
    if 'composite.color' in last and node.alive():
        sec += 1
        node.send(frames[0], sec)
        sec += 1
        node.send(frames[0], sec)   # same frame again: nothing moved, all background
        if node.wait_output(sec, output='composite'):
            pixel = list(np.frombuffer(node.last['composite'].data, np.uint8)[:3])
    out.check('composite shows the last colour',
              pixel is not None and pixel == last['composite.color'],
              'no colour accepted or no composite at the end' if pixel is None else
              'composite background %s, last accepted colour %s'
              % (pixel, last['composite.color']))
    bench.client.destroy_client(client)
    out.figures.update({'parameter sets sent': len(pending),
                        'sets/s achieved': round(len(pending) / max(elapsed, 1e-9), 1),
                        'accepted': accepted, 'rejected with reason': rejected,
                        'wrong or missing answers': len(wrong) + unanswered,
                        'frames processed meanwhile': frames_during})
    node.stop()
    return out


# --- 4b. hostile parameters -------------------------------------------------------------

#: Longest a get_state answer may take while a hostile request is pending (issue 19: 0.1 s;
#: the check allows 1 s on a shared machine, the figures report what was measured).
HOSTILE_ANSWER_LIMIT = 1.0


def _hostile_files(work_dir: str) -> Dict[str, str]:
    """Write the files the hostile scenario points the node at; return their paths."""
    import struct
    import zlib
    folder = os.path.join(work_dir, 'hostile')
    os.makedirs(folder, exist_ok=True)
    paths = {name: os.path.join(folder, name) for name in
             ('picture.fifo', 'huge.png', 'sparse.onnx', 'secret')}
    os.mkfifo(paths['picture.fifo'])
    with open(paths['sparse.onnx'], 'wb') as stream:
        stream.truncate(200 * 1024 ** 3)
    with open(paths['secret'], 'wb') as stream:
        stream.write(b'root:$6$salt$hash:19000:0:99999:7:::\n')

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack('>I', len(payload)) + kind + payload + struct.pack(
            '>I', zlib.crc32(kind + payload) & 0xFFFFFFFF)
    side = 10000   # 100 Mpx of black grey: ~100 KB of PNG, ~300 MB once decoded to BGR
    packer = zlib.compressobj(9)
    data = b''.join(packer.compress(b'\x00' * (side + 1)) for _ in range(side)) + \
        packer.flush()
    with open(paths['huge.png'], 'wb') as stream:
        stream.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack(
            '>IIBBBBB', side, side, 8, 0, 0, 0, 0)) + chunk(b'IDAT', data) + chunk(b'IEND', b''))
    return paths


def _probe(node: LiveNode, client, future, limit: float = 30.0,
           during: Optional[Callable[[], None]] = None) -> List[float]:
    """
    Query get_state through ``client``, one at a time, until ``future`` is done.

    Returns the latencies; ``during()`` runs between queries (e.g. sends a frame).
    """
    latencies = []
    end = time.monotonic() + limit
    while not future.done() and time.monotonic() < end:
        start = time.monotonic()
        query = client.call_async(GetState.Request())
        while not query.done() and time.monotonic() - start < 5.0:
            rclpy.spin_once(node.client, timeout_sec=0.005)
        latencies.append(time.monotonic() - start if query.done() else float('inf'))
        if not query.done():
            client.remove_pending_request(query)
        if during is not None:
            during()
        node.spin(0.02)
    return latencies


class _SlowIndex:
    """A package index on localhost that answers 404 after ``delay`` s (a slow download)."""

    def __init__(self, delay: float = 3.0):
        import http.server
        import socketserver
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):

            def do_GET(self):  # noqa: N802 - the name http.server calls
                time.sleep(delay)
                self.send_error(404)

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(('127.0.0.1', 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = 'http://127.0.0.1:%d/simple' % self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def hostile_parameters(bench: Bench, work_dir: str) -> Outcome:
    """
    Parameter values a hostile client sends to an active node (issue 19).

    A FIFO and a PNG declaring 100 Mpx as background picture, a 200 GB sparse file and a
    file to fingerprint as model, ``models.model_dir`` while active,
    ``tensorrt.engine_cache`` outside the model cache, 64 consensus samples
    over the memory budget, a 1 MB value.  Each request must be refused with its reason
    and a reply under 1000 characters, ``get_state`` must answer throughout, frames must
    flow after each, the foreign file's sha256 must appear in no reply or log, nothing
    may be written outside the model cache, and resident memory must not grow.
    """
    out = Outcome('hostile parameters', declared=CHECKS['hostile'])
    files = _hostile_files(work_dir)
    secret_digest = hashlib.sha256(open(files['secret'], 'rb').read()).hexdigest()
    outside = os.path.join(work_dir, 'hostile', 'outside')
    hd = 1920 * 1080
    node = bench.start({'segmenter': 'bgsub', 'models.auto_fetch': False,
                        'max_pixels': hd, 'memory_budget_mb': 600,   # rvm fits: 511 MB
                        'qos.input_reliability': 'reliable', 'qos.depth': 10},
                       input_reliable=True)
    node.configure_activate()
    client = bench.client.create_client(SetParameters, node.target + '/set_parameters')
    client.wait_for_service(timeout_sec=20.0)
    state = bench.client.create_client(GetState, node.target + '/get_state')
    state.wait_for_service(timeout_sec=20.0)
    frames = textured_frames(2, 120, 160)
    attacks = [
        ('FIFO picture', [('composite.image_path', files['picture.fifo']),
                          ('composite.mode', 'image')], 'FIFO'),
        ('PNG declaring 100 Mpx', [('composite.image_path', files['huge.png']),
                                   ('composite.mode', 'image')], 'max_pixels'),
        ('200 GB sparse model', [('models.model_path', files['sparse.onnx']),
                                 ('segmenter', 'rvm')], 'allowed'),
        ('sha256 probe of a foreign file', [('models.model_path', files['secret']),
                                            ('segmenter', 'rvm')], 'is not model'),
        ('models.model_dir while active', [('models.model_dir', outside)],
         'models.model_dir'),
        ('tensorrt.engine_cache outside the cache', [('tensorrt.engine_cache', outside)],
         'tensorrt.engine_cache'),
        ('64 consensus samples at 1080p, budget 600 MB',
         [('bgsub.consensus.samples', 64)], 'memory_budget_mb 600'),
        ('1 MB segmenter name', [('segmenter', 'x' * (1 << 20))], 'segmenter'),
    ]
    baseline = node.usage()
    worst = 0.0
    replies = []
    sec = 1000
    for label, values, reason in attacks:
        request = SetParameters.Request(parameters=[parameter_msg(k, v) for k, v in values])
        start = time.monotonic()
        future = client.call_async(request)
        latencies = _probe(node, state, future)
        answered = future.done()
        took = time.monotonic() - start
        out.check('every attack answered', answered, '%s: set_parameters got no answer' % label)
        slowest = max(latencies) if latencies else 0.0
        worst = max(worst, slowest)
        out.check('get_state answers in time',
                  slowest <= HOSTILE_ANSWER_LIMIT, '%s: a get_state answer took %.2f s'
                  % (label, slowest))
        if answered:
            last = future.result().results[-1]
            replies.extend(r.reason for r in future.result().results)
            out.check('refused with its reason', not last.successful and reason in last.reason,
                      '%s: not refused with %r: %s' % (label, reason, last.reason[:300]))
            out.check('replies short', all(len(r.reason) < 1000 for r in future.result().results),
                      '%s: a reply of %d characters' % (
                          label, max(len(r.reason) for r in future.result().results)))
        for name, _ in values[:-1]:   # undo the first steps (paths, accepted alone)
            node.lifecycle.set_parameters({name: ''})
        node.send(frames[0], sec)
        node.send(frames[1], sec + 1)
        flowing = node.wait_output(sec + 1, timeout=10.0)
        out.check('frames flow after each', flowing, '%s: frames stopped' % label)
        sec += 2
        out.figures['%s: answer (s) / slowest get_state (ms)' % label] = '%.2f / %.0f' % (
            took, 1000 * slowest)
    growth = _growth_mb(baseline, node.usage())
    out.check('RSS flat', growth < 100.0, 'resident memory grew by %.0f MB' % growth)
    leaked = secret_digest in '\n'.join(replies) + node.output()
    out.check('no foreign sha256 given out',
              not leaked, "the foreign file's sha256 appears in a reply or the log")
    out.check('nothing written outside the cache',
              not os.path.exists(outside), 'something was written to %s' % outside)
    longest = max(len(line) for line in node.output().splitlines())
    out.check('log lines short', longest < 2000, 'a log line of %d characters' % longest)
    out.figures.update({'slowest get_state during the attacks (ms)': round(1000 * worst),
                        'resident memory growth (MB)': round(growth, 1),
                        'longest log line (characters)': longest,
                        'foreign sha256 given out': 'yes' if leaked else 'no'})
    bench.client.destroy_client(client)
    bench.client.destroy_client(state)
    node.stop()
    _slow_reload(bench, work_dir, out)
    return out


def _slow_reload(bench: Bench, work_dir: str, out: Outcome, delay: float = 3.0) -> None:
    """Reload rvm with a model download of ``delay`` s; services and frames must go on."""
    index = _SlowIndex(delay)
    env = dict(bench.env, PIP_INDEX_URL=index.url, PIP_RETRIES='0', PIP_TIMEOUT='10',
               XDG_CACHE_HOME=os.path.join(work_dir, 'hostile', 'xdg'))
    env.pop('PIP_NO_INDEX', None)
    saved, bench.env = bench.env, env
    try:
        node = bench.start({'segmenter': 'framediff', 'models.auto_fetch': True,
                            'qos.input_reliability': 'reliable', 'qos.depth': 10},
                           input_reliable=True)
    finally:
        bench.env = saved
    try:
        node.configure_activate()
        client = bench.client.create_client(SetParameters, node.target + '/set_parameters')
        state = bench.client.create_client(GetState, node.target + '/get_state')
        client.wait_for_service(timeout_sec=20.0)
        state.wait_for_service(timeout_sec=20.0)
        frames = textured_frames(2, 120, 160)
        sent = [5000]

        def feed():
            node.send(frames[sent[0] % 2], sent[0])
            sent[0] += 1
        start = time.monotonic()
        future = client.call_async(SetParameters.Request(
            parameters=[parameter_msg('segmenter', 'rvm')]))
        latencies = _probe(node, state, future, limit=60.0, during=feed)
        took = time.monotonic() - start
        node.spin(1.0)
        served = sum(node.got(sec) for sec in range(5000, sent[0]))
        result = future.result().results[0] if future.done() else None
        out.check('slow reload refused with its download error',
                  result is not None and not result.successful and
                  'pip download' in result.reason,
                  'reload with a slow download: %s' % (result.reason[:300] if result else
                                                       'no answer'))
        out.check('slow reload answers after its download',
                  took >= delay, 'the reload answered after %.1f s, before its download '
                  'ended' % took)
        slowest = max(latencies) if latencies else float('inf')
        out.check('get_state answers during the slow reload',
                  slowest <= HOSTILE_ANSWER_LIMIT, 'slow reload: a get_state answer took '
                  '%.2f s' % slowest)
        out.check('frames served during the slow reload',
                  served > 0, 'no frame was served during the slow reload')
        median = sorted(latencies)[len(latencies) // 2] if latencies else float('inf')
        out.figures.update({
            'reload downloading %.0f s: answer (s)' % delay: round(took, 2),
            'get_state queries during it / median / slowest (ms)': '%d / %.0f / %.0f' % (
                len(latencies), 1000 * median, 1000 * slowest),
            'frames served during it (of sent)': '%d (of %d)' % (served, sent[0] - 5000)})
        bench.client.destroy_client(client)
        bench.client.destroy_client(state)
    finally:
        node.stop()
        index.close()


# --- 5. security -------------------------------------------------------------------------

def security(root: str) -> Outcome:
    """Audit the package's sources for unpickling and shell use (see security_audit)."""
    out = Outcome('security audit', declared=CHECKS['security'])
    roots = [os.path.join(root, p) for p in ('matte_ros', 'tools', 'launch', 'setup.py')]
    roots = [p for p in roots if os.path.exists(p)]
    files = security_audit.python_files(roots)
    findings = security_audit.audit(roots)
    out.check('the package audited', len(files) > 30,
              'only %d Python files found under %s' % (len(files), root))
    for finding in findings or [None]:
        out.check('no unpickling or shell', finding is None, str(finding))
    out.figures.update({'Python files audited': len(files), 'findings': len(findings)})
    return out


# --- report ------------------------------------------------------------------------------

def plan(bench: Bench, sizes: Dict[str, Any], root: str,
         work_dir: str) -> List[Tuple[str, Callable[[], Outcome]]]:
    """Return every scenario as (key in :data:`CHECKS`, a call that runs it at ``sizes``)."""
    return [
        ('bad_input', lambda: bad_input(bench, sizes['messages'])),
        ('lifecycle', lambda: lifecycle_cycles(bench, sizes['cycles'])),
        ('shutdown', lambda: shutdown_every_state(bench)),
        ('signals', lambda: signals(bench)),
        ('soak', lambda: soak(bench, sizes['soak_frames'])),
        ('model_files', lambda: model_files(bench, work_dir)),
        ('segmenter_exception', lambda: segmenter_exception(bench)),
        ('publisher_restart', lambda: publisher_restart(bench)),
        ('parameter_storm', lambda: parameter_storm(bench, sizes['storm_seconds'])),
        ('hostile', lambda: hostile_parameters(bench, work_dir)),
        ('security', lambda: security(root)),
    ]


def run_all(bench: Bench, sizes: Dict[str, Any], root: str, work_dir: str,
            only: Optional[List[str]] = None, log=print) -> List[Outcome]:
    """Run every scenario (or those named in ``only``) at ``sizes``; return outcomes."""
    outcomes = []
    for key, run in plan(bench, sizes, root, work_dir):
        if only and key not in only:
            continue
        log('running %s ...' % key)
        start = time.monotonic()
        try:
            outcome = run()
        except Exception as exc:  # noqa: B902 - a scenario's crash is a finding, not the end
            outcome = Outcome(key, problems=['scenario raised %s: %s'
                                             % (type(exc).__name__, exc)])
        finally:
            bench.close()
        outcome.seconds = time.monotonic() - start
        log('  %s: %s (%.0f s)' % (outcome.name, 'PASS' if outcome.passed else (
            'SKIPPED: ' + outcome.skipped if outcome.skipped else 'FAIL'), outcome.seconds))
        for problem in outcome.problems:
            log('    - ' + problem)
        outcomes.append(outcome)
    return outcomes


def report(outcomes: List[Outcome], sizes: Dict[str, Any], command: str) -> str:
    """Return docs/reliability.md: one table row per figure, and any problems."""
    lines = [
        '# Reliability figures',
        '',
        'Written by `%s` on %s (%s, %d CPUs, Python %s) — the live node in its own '
        'process over real DDS (Fast DDS, localhost).  Sizes: %s.  Each scenario lists '
        'what it measured; a scenario passes when none of its checks found a broken '
        'promise (see `test/reliability_scenarios.py` for the checks).' % (
            command, time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
            platform.platform(), os.cpu_count() or 0, platform.python_version(),
            ', '.join('%s %s' % (k, v) for k, v in sizes.items())),
        '',
        '| scenario | result | figure | value |',
        '| --- | --- | --- | --- |',
    ]
    for outcome in outcomes:
        result = 'pass' if outcome.passed else (
            'skipped: ' + outcome.skipped if outcome.skipped else 'FAIL')
        rows = list(outcome.figures.items()) or [('', '')]
        rows.append(('seconds', round(outcome.seconds, 1)))
        for i, (key, value) in enumerate(rows):
            first = i == 0
            cells = (outcome.name if first else '', result if first else '', key, value)
            lines.append('| %s |' % ' | '.join(str(c).replace('|', '\\|') for c in cells))
    problems = [(o.name, p) for o in outcomes for p in o.problems]
    lines += ['', '## Problems found', '']
    lines += ['- %s: %s' % (n, p.splitlines()[0]) for n, p in problems] or ['None.']
    return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
    """Run the scenarios (full size unless ``--reduced``) and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('--out', default='', help='write the Markdown report here')
    parser.add_argument('--reduced', action='store_true', help='the sizes of make test')
    parser.add_argument('--only', nargs='*', help='run only these scenarios')
    for key, value in FULL.items():
        parser.add_argument('--' + key.replace('_', '-'), type=type(value), default=None)
    args = parser.parse_args(argv)
    sizes = dict(REDUCED if args.reduced else FULL)
    for key in FULL:
        value = getattr(args, key)
        if value is not None:
            sizes[key] = value
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = processes.apply_isolation()
    rclpy.init()
    client = rclpy.create_node('matte_reliability_%d' % os.getpid())
    work_dir = tempfile.mkdtemp(prefix='matte_reliability_')
    bench = Bench(client, env, work_dir)
    try:
        outcomes = run_all(bench, sizes, root, work_dir, args.only)
    finally:
        bench.close()
        client.destroy_node()
        rclpy.try_shutdown()
    command = 'python test/reliability_scenarios.py' + (' --reduced' if args.reduced else '')
    text = report(outcomes, sizes, command)
    if args.out:
        with open(args.out, 'w') as stream:
            stream.write(text)
        print('wrote %s' % args.out)
    else:
        print(text)
    ok = all(o.passed or o.skipped for o in outcomes)
    if ok:
        shutil.rmtree(work_dir, ignore_errors=True)
    else:
        print('node logs kept in %s' % work_dir)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
