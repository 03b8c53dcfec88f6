"""rviz/matte.rviz shows input, mask, alpha and composite with QoS matching the node."""

import os

from matte_ros import params
from matte_ros.ros import node
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RVIZ = os.path.join(ROOT, 'rviz', 'matte.rviz')
RELIABILITY = {'reliable': 'Reliable', 'best_effort': 'Best Effort'}


def _image_displays():
    with open(RVIZ, encoding='utf-8') as f:
        config = yaml.safe_load(f)
    displays = config['Visualization Manager']['Displays']
    return {d['Name']: d for d in displays if d['Class'] == 'rviz_default_plugins/Image'}


def test_layout_shows_the_input_and_every_image_output():
    displays = _image_displays()
    topics = {name: d['Topic']['Value'] for name, d in displays.items()}
    prefix = '/' + node.NODE_NAME + '/'
    assert topics == {'Input': '/' + node.INPUT_TOPIC,
                      'Mask': node.MASK_TOPIC.replace('~/', prefix),
                      'Alpha': node.ALPHA_TOPIC.replace('~/', prefix),
                      'Composite': node.COMPOSITE_TOPIC.replace('~/', prefix)}
    assert all(d['Enabled'] for d in displays.values())


def test_reliability_matches_the_node_defaults():
    displays = _image_displays()
    outputs = RELIABILITY[params.BY_NAME['qos.output_reliability'].default]
    for name in ('Mask', 'Alpha', 'Composite'):
        assert displays[name]['Topic']['Reliability Policy'] == outputs, name
    # a best-effort reader matches both kinds of camera publisher; reliable would not
    assert displays['Input']['Topic']['Reliability Policy'] == 'Best Effort'
    for d in displays.values():
        assert d['Topic']['Durability Policy'] == 'Volatile'
