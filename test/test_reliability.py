"""
Robustness: bad input, lifecycle churn, a soak, faults, signals, security.

The DDS tests run the scenarios of ``reliability_scenarios`` (beside this file) at reduced size
(``REDUCED``) against the node in its own process; ``make reliability`` runs the same
code at full size and writes docs/reliability.md.  Each scenario runs once; every check
it names (``reliability_scenarios.CHECKS``) is a test of its own, which fails with the
broken promise's message.  The other tests check the pieces without a ROS graph:
malformed messages, real ``sensor_msgs/Image`` objects under hypothesis, the rejection
table, the /proc probe, the source audit and model checksums.
"""

import os
import random
import shutil
import threading
import tracemalloc

from hypothesis import event
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import malformed
from matte_ros.image_encodings import EncodingError
from matte_ros.measure import process_probe
from matte_ros.stats import MAX_REASONS
from matte_ros.stats import Stats
import numpy as np
import pytest
import security_audit

from conftest import ENV  # noqa: I100
from conftest import ROOT
from conftest import shared_path

serialization = pytest.importorskip('rclpy.serialization', reason='rclpy not installed')
msg_pkg = pytest.importorskip('sensor_msgs.msg', reason='sensor_msgs (ROS 2) not installed')

from matte_ros.ros.image_msgs import image_msg_to_bgr8  # noqa: E402
import reliability_scenarios as reliability  # noqa: E402, I100

Image = msg_pkg.Image
SIZES = reliability.REDUCED


# --- malformed messages, without DDS -------------------------------------------------------

def test_every_generated_message_is_malformed_and_reproducible():
    first = list(malformed.generate(500, seed=3, max_pixels=4096))
    again = list(malformed.generate(500, seed=3, max_pixels=4096))
    assert first == again
    assert {f['kind'] for f in first} == set(malformed.KINDS)
    for fields in first:
        assert not malformed.accepted(fields, 4096), fields['kind']
    assert max(f['height'] for f in first) >= 2 ** 31 - 1
    assert any(f['encoding'] not in malformed.FOREIGN_ENCODINGS and
               f['kind'] == 'encoding' for f in first)


def test_huge_declared_sizes_are_refused_without_allocating():
    """Header claims of up to 2^32-1 per side are refused before any buffer is made."""
    huge = [f for f in malformed.generate(400, seed=5, max_pixels=4096)
            if f['kind'] in ('huge_dims', 'step_huge', 'max_pixels')]
    tracemalloc.start()
    try:
        for fields in huge:
            assert not malformed.accepted(fields, 4096)
            if fields['kind'] != 'max_pixels':   # well formed, refused only by the limit
                assert not malformed.accepted(fields, None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, 'refusing %d messages peaked at %d bytes' % (len(huge), peak)


def wire(msg):
    """Return ``msg`` serialised and deserialised, as a subscriber gets it."""
    return serialization.deserialize_message(serialization.serialize_message(msg), Image)


VALID_NAMES = ['bgr8', 'rgb8', 'bgra8', 'mono8', 'mono16', 'yuv422', 'yuyv']
# one_of picks a branch uniformly: repeated branches (distinct objects) weight the draw
ENCODING_NAMES = st.one_of(st.sampled_from(sorted(malformed.FOREIGN_ENCODINGS)),
                           st.sampled_from(VALID_NAMES), st.sampled_from(VALID_NAMES[::-1]),
                           st.text(st.characters(blacklist_categories=('Cs',),
                                                 blacklist_characters='\x00'), max_size=12))
DIMENSION = st.one_of(st.integers(0, 12), st.integers(1, 12), st.integers(1, 10),
                      st.integers(2 ** 31 - 2, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1))
STEP = st.one_of(st.integers(0, 50), st.integers(1, 40), st.integers(0, 2 ** 32 - 1))


@settings(max_examples=300, deadline=None)
@given(encoding=ENCODING_NAMES, height=DIMENSION, width=DIMENSION, step=STEP,
       bigendian=st.integers(0, 255), data=st.binary(max_size=600),
       max_pixels=st.one_of(st.none(), st.integers(1, 200)), fit=st.booleans())
def test_any_image_message_converts_or_raises_encoding_error(encoding, height, width, step,
                                                             bigendian, data, max_pixels, fit):
    """A real Image message with arbitrary fields, after the wire: BGR frame or refusal."""
    if fit and width <= 12 and height <= 12:   # half the cases: a step and data that fit
        step = 4 * width + step % 5
        data = (data * (step * height // max(len(data), 1) + 1))[:step * height] \
            if data else bytes(step * height)
    msg = wire(Image(encoding=encoding, height=height, width=width, step=step,
                     is_bigendian=bigendian, data=data))
    try:
        frame = image_msg_to_bgr8(msg, max_pixels)
    except EncodingError as exc:
        assert str(exc)
        event('refused')
        return
    event('converted')
    assert frame.shape == (height, width, 3) and frame.dtype == np.uint8
    assert max_pixels is None or height * width <= max_pixels
    assert len(data) == step * height


def test_rejection_reasons_stay_a_bounded_table():
    stats = Stats()
    rng = random.Random(0)
    for i in range(3000):
        name = ''.join(rng.choice('abcxyz019_') for _ in range(8))
        stats.on_rejected("unsupported encoding '%s' (accepted: bgr8, rgb8)" % name)
        stats.on_rejected('data is %d bytes, expected step*height = %d' % (i, i + 1))
    assert stats.rejected == 6000
    assert stats.rejected_reasons == {'unsupported encoding ...': 3000,
                                      'data is N bytes, expected step*height = N': 3000}
    for i in range(3 * MAX_REASONS):
        stats.on_rejected('defect number %s' % ('x' * i))
    assert len(stats.rejected_reasons) == MAX_REASONS + 1
    assert sum(stats.rejected_reasons.values()) == stats.rejected


@pytest.mark.skipif(not process_probe.supported(), reason='needs Linux /proc')
def test_process_probe_counts_threads_and_files(tmp_path):
    before = process_probe.sample()
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    with open(tmp_path / 'f', 'w'):
        during = process_probe.sample()
    release.set()
    thread.join()
    assert during.threads == before.threads + 1
    assert during.fds == before.fds + 1
    assert before.rss_kb > 1000


# --- the scenarios: one test per named check ----------------------------------------------
#
# Each scenario runs once, when the first of its checks is asked for (the outcome is kept
# for the rest of the module), at the reduced sizes; every check it declares in
# ``reliability.CHECKS`` is a test of its own, so all broken promises are reported, each
# with its message.  ``python test/reliability_scenarios.py --only KEY`` runs the same code.

#: Scenarios that need no ROS graph.
WITHOUT_DDS = ('security',)


def check_items():
    """Return a pytest param per (scenario, check), DDS ones marked ``dds``."""
    return [pytest.param(key, name, id='%s: %s' % (key, name),
                         marks=() if key in WITHOUT_DDS else pytest.mark.dds)
            for key, names in reliability.CHECKS.items() for name in names]


@pytest.fixture(scope='module')
def scenario(ros_context, tmp_path_factory):
    """Return ``outcome(key)``: the scenario's Outcome, run on first use (its error kept)."""
    import rclpy
    done = {}
    client = []

    def outcome(key):
        if key not in done:
            work = str(tmp_path_factory.mktemp(key))
            if key not in WITHOUT_DDS and not client:
                client.append(rclpy.create_node('matte_reliability_test_%d' % os.getpid()))
            bench = reliability.Bench(client[0] if client else None, ENV, work)
            try:
                done[key] = dict(reliability.plan(bench, SIZES, ROOT, work))[key]()
            except Exception as exc:  # noqa: B902 - kept: every check of it reports it
                done[key] = exc
            finally:
                bench.close()
        if isinstance(done[key], Exception):
            pytest.fail('scenario %s raised %s: %s' % (key, type(done[key]).__name__,
                                                       done[key]))
        return done[key]

    yield outcome
    for node in client:
        node.destroy_node()


@pytest.mark.parametrize('key,name', check_items())
def test_scenario_keeps_its_promise(scenario, key, name):
    outcome = scenario(key)
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    assert name in outcome.checks, 'check not made: the scenario ended before it (%s)' % (
        '; '.join(p.splitlines()[0] for p in outcome.problems) or 'no problem recorded')
    failures = outcome.checks[name]
    assert not failures, '\n'.join(failures)


def test_every_scenario_declares_its_checks():
    keys = [key for key, _ in reliability.plan(None, SIZES, ROOT, '')]
    assert keys == list(reliability.CHECKS)
    for key, names in reliability.CHECKS.items():
        assert names and len(set(names)) == len(names), key


def test_a_named_check_records_each_failure_and_refuses_undeclared_names():
    out = reliability.Outcome('one', declared=('held', 'broken'))
    assert out.check('held', True, 'not shown')
    assert not out.check('broken', False, 'first time')
    out.check('broken', True, 'not shown')
    out.check('broken', False, 'second time')
    assert out.checks == {'held': [], 'broken': ['first time', 'second time']}
    assert out.problems == ['broken: first time', 'broken: second time'] and not out.passed
    with pytest.raises(KeyError, match='not declared'):
        out.check('typo', True, '')


# --- security, without DDS -----------------------------------------------------------------

@pytest.mark.parametrize('source,what', [
    ('import pickle\n', 'import pickle'),
    ('from joblib import load\n', 'from joblib'),
    ('import torch\ntorch.load(path)\n', 'weights_only'),
    ('import torch\ntorch.load(path, weights_only=False)\n', 'weights_only'),
    ('import numpy as np\nnp.load(path, allow_pickle=True)\n', 'allow_pickle'),
    ('import subprocess\nsubprocess.run(cmd,\n               shell=True)\n', 'shell'),
    ('import os\nos.system("ls " + path)\n', 'os.system'),
    ('import os\nos.popen(path)\n', 'os.popen'),
    ('import yaml\nyaml.load(text)\n', 'SafeLoader'),
    ('eval(expression)\n', 'eval'),
])
def test_the_audit_finds_each_unsafe_construct(source, what):
    findings = security_audit.audit_source(source)
    assert len(findings) == 1 and what in findings[0].what


def test_the_audit_accepts_the_safe_forms():
    safe = ('import torch, numpy as np, yaml, subprocess\n'
            'torch.load(p, weights_only=True)\nnp.load(p)\n'
            'np.load(p, allow_pickle=False)\nyaml.load(t, Loader=yaml.SafeLoader)\n'
            'yaml.safe_load(t)\nsubprocess.run([exe, path], shell=False)\n'
            '"torch.load(p) and shell=True named in a string"\n')
    assert security_audit.audit_source(safe) == []


@pytest.mark.parametrize('segmenter,model', [('rvm', reliability.RVM_MODEL),
                                             ('selfie', reliability.SELFIE_MODEL)])
def test_a_tampered_model_file_is_refused_by_its_checksum(segmenter, model, tmp_path):
    from matte_ros.models import ModelError
    from matte_ros.pipeline import Pipeline
    path = str(tmp_path / model)
    shutil.copyfile(shared_path('models', model), path)
    with open(path, 'r+b') as stream:   # flip one byte in the middle
        stream.seek(os.path.getsize(path) // 2)
        byte = stream.read(1)
        stream.seek(-1, os.SEEK_CUR)
        stream.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelError, match='checksum does not match') as err:
        Pipeline({'segmenter': segmenter, 'models.model_path': path,
                  'models.auto_fetch': False})
    assert path in str(err.value)


def test_report_table_lists_every_figure():
    good = reliability.Outcome('one', {'messages': 3, 'a|b': 'x'}, seconds=1.0)
    bad = reliability.Outcome('two', {}, ['it broke\nlog'])
    text = reliability.report([good, bad], {'messages': 3}, 'cmd')
    assert '| one | pass | messages | 3 |' in text
    assert 'a\\|b' in text
    assert '| two | FAIL |' in text and '- two: it broke' in text
