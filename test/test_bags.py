"""
``matte-ros process`` on ROS 2 bags (MCAP and sqlite3), read and written with rosbags.

Each test writes its own small bag with rosbags' Writer: a textured background and a
bright square that appears, as ``sensor_msgs/Image`` (bgr8) on ``/cam/image`` and as PNG
``CompressedImage`` on ``/cam/image/compressed``; the framediff segmenter must find the
square.  No ROS installation is involved.
"""

import os

import cv2
from matte_ros import bags
from matte_ros import compressed
from matte_ros.cli.main import main as cli
import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer
from rosbags.typesys import get_typestore
from rosbags.typesys import Stores
import yaml

H, W = 60, 80
SQUARE = (slice(20, 40), slice(30, 55))
TYPES = get_typestore(Stores.ROS2_HUMBLE)


def _frames(n=4):
    rng = np.random.default_rng(2)
    background = rng.integers(0, 60, size=(H, W, 3), dtype=np.uint8)
    frames = [background.copy() for _ in range(n)]
    frames[-1][SQUARE] = 250
    return frames


def _header(i):
    header_type = TYPES.types['std_msgs/msg/Header']
    time_type = TYPES.types['builtin_interfaces/msg/Time']
    return header_type(stamp=time_type(sec=100 + i, nanosec=5000), frame_id='cam_optical')


def _write_bag(path, storage):
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    image_type = TYPES.types[bags.IMAGE]
    compressed_type = TYPES.types[bags.COMPRESSED_IMAGE]
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        raw = writer.add_connection('/cam/image', bags.IMAGE, typestore=TYPES)
        png = writer.add_connection('/cam/image/compressed', bags.COMPRESSED_IMAGE,
                                    typestore=TYPES)
        other = writer.add_connection('/chatter', 'std_msgs/msg/String', typestore=TYPES)
        for i, frame in enumerate(_frames()):
            t = (100 + i) * 10 ** 9 + 5000
            msg = image_type(header=_header(i), height=H, width=W, encoding='bgr8',
                             is_bigendian=0, step=W * 3, data=frame.reshape(-1))
            writer.write(raw, t, TYPES.serialize_cdr(msg, bags.IMAGE))
            data = np.frombuffer(compressed.encode(frame, 'png'), np.uint8)
            msg = compressed_type(header=_header(i), format='png', data=data)
            writer.write(png, t, TYPES.serialize_cdr(msg, bags.COMPRESSED_IMAGE))
            writer.write(other, t, TYPES.serialize_cdr(
                TYPES.types['std_msgs/msg/String'](data='hi'), 'std_msgs/msg/String'))
    return path


@pytest.mark.parametrize('storage, topic', [('mcap', '/cam/image'),
                                            ('sqlite3', '/cam/image/compressed')])
def test_process_bag_writes_masks_and_an_output_bag(tmp_path, storage, topic):
    bag = _write_bag(str(tmp_path / 'in_bag'), storage)
    out = str(tmp_path / 'out')
    out_bag = str(tmp_path / 'out_bag')
    code = cli(['process', '--input', bag, '--topic', topic, '--output', out,
                '--segmenter', 'framediff', '--output-bag', out_bag, '--storage', storage,
                '--quiet'])
    assert code == 0
    stems = sorted(os.listdir(os.path.join(out, 'mask')))
    assert stems == ['%06d.png' % i for i in range(4)]
    last = cv2.imread(os.path.join(out, 'mask', '000003.png'), cv2.IMREAD_GRAYSCALE)
    assert last[SQUARE].min() == 255 and last.sum() == 255 * last[SQUARE].size
    first = cv2.imread(os.path.join(out, 'mask', '000001.png'), cv2.IMREAD_GRAYSCALE)
    assert first.max() == 0
    with Reader(out_bag) as reader:
        topics = {c.topic: c for c in reader.connections}
        assert set(topics) == {'/matte/mask', '/matte/alpha', '/matte/composite'}
        assert all(c.msgcount == 4 for c in topics.values())
        masks = [(t, TYPES.deserialize_cdr(raw, c.msgtype)) for c, t, raw in
                 reader.messages(connections=[topics['/matte/mask']])]
    for i, (t, msg) in enumerate(masks):
        assert t == (100 + i) * 10 ** 9 + 5000
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (100 + i, 5000)
        assert msg.header.frame_id == 'cam_optical' and msg.encoding == 'mono8'
    assert np.array_equal(masks[-1][1].data.reshape(H, W), last)
    with open(os.path.join(out_bag, 'metadata.yaml'), encoding='utf-8') as f:
        info = yaml.safe_load(f)['rosbag2_bagfile_information']
    assert info['storage_identifier'] == storage


def test_a_file_inside_the_bag_folder_is_accepted(tmp_path):
    bag = _write_bag(str(tmp_path / 'in_bag'), 'mcap')
    mcap = [f for f in os.listdir(bag) if f.endswith('.mcap')][0]
    frames = bags.BagFrames(os.path.join(bag, mcap), '/cam/image')
    try:
        assert len(frames) == 4
        items = list(frames)
        assert [stem for stem, _ in items] == ['000000', '000001', '000002', '000003']
        assert np.array_equal(items[-1][1], _frames()[-1])
        assert frames.current[1].stamp.sec == 103
    finally:
        frames.close()


def test_wrong_topic_or_missing_topic_is_a_usage_error(tmp_path, capsys):
    bag = _write_bag(str(tmp_path / 'in_bag'), 'mcap')
    out = str(tmp_path / 'out')
    assert cli(['process', '--input', bag, '--topic', '/nope', '--output', out]) == 2
    err = capsys.readouterr().err
    assert '/nope' in err and '/cam/image' in err
    assert cli(['process', '--input', bag, '--topic', '/chatter', '--output', out]) == 2
    assert 'String' in capsys.readouterr().err
    assert cli(['process', '--input', bag, '--output', out]) == 2
    assert '--topic' in capsys.readouterr().err


def test_output_bag_is_never_overwritten(tmp_path, capsys):
    bag = _write_bag(str(tmp_path / 'in_bag'), 'mcap')
    existing = tmp_path / 'exists'
    existing.mkdir()
    assert cli(['process', '--input', bag, '--topic', '/cam/image', '--output',
                str(tmp_path / 'out'), '--output-bag', str(existing), '--quiet']) == 2
    assert 'exists' in capsys.readouterr().err


def test_transparent_composite_goes_into_the_output_bag_as_bgra8(tmp_path):
    bag = _write_bag(str(tmp_path / 'in_bag'), 'mcap')
    out_bag = str(tmp_path / 'out_bag')
    assert cli(['process', '--input', bag, '--topic', '/cam/image', '--output',
                str(tmp_path / 'out'), '--segmenter', 'framediff', '--output-bag', out_bag,
                '--param', 'composite.mode=transparent', '--quiet']) == 0
    with Reader(out_bag) as reader:
        topics = {c.topic: c for c in reader.connections}
        composites = [TYPES.deserialize_cdr(raw, c.msgtype) for c, _, raw in
                      reader.messages(connections=[topics['/matte/composite']])]
        alphas = [TYPES.deserialize_cdr(raw, c.msgtype) for c, _, raw in
                  reader.messages(connections=[topics['/matte/alpha']])]
    last, alpha = composites[-1], alphas[-1]
    assert last.encoding == 'bgra8' and last.step == W * 4
    bgra = last.data.reshape(H, W, 4)
    assert np.array_equal(bgra[:, :, 3], alpha.data.reshape(H, W))
    assert np.array_equal(bgra[:, :, :3], _frames()[-1])
    assert bgra[SQUARE][:, :, 3].min() == 255
