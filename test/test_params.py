"""
The parameter schema is the single source of truth: yaml, tables and descriptors follow it.

``config/matte.yaml``, the full table in docs/parameters.md and the README's summary and
segmenter tables are generated from :mod:`matte_ros.params` and the segmenters'
declarations; these tests fail when one drifts, and check that the ROS descriptors say what
the schema says.
"""

import os
import re

from matte_ros import params
from matte_ros.cli import params_cmd
from matte_ros.segmenters import registry
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, 'README.md')
PARAMETERS_DOC = os.path.join(ROOT, 'docs', 'parameters.md')
YAML_FILE = os.path.join(ROOT, 'config', 'matte.yaml')
TABLE_BEGIN = '<!-- params:begin -->'
TABLE_END = '<!-- params:end -->'


def test_config_yaml_is_the_generated_text():
    with open(YAML_FILE, encoding='utf-8') as f:
        text = f.read()
    assert text == params.to_yaml(), 'config/matte.yaml is stale: run `make params`'


def test_config_yaml_values_are_the_schema_defaults():
    with open(YAML_FILE, encoding='utf-8') as f:
        data = yaml.safe_load(f)
    values = data['/**/matte']['ros__parameters']
    assert values == params.defaults()
    for name, value in values.items():
        assert params.validate(name, value) == value


def _read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def test_parameters_doc_table_is_the_generated_table():
    text = _read(PARAMETERS_DOC)
    assert TABLE_BEGIN in text and TABLE_END in text, 'docs/parameters.md lacks the markers'
    table = text.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0].strip() + '\n'
    assert table == params.to_markdown(), 'docs/parameters.md is stale: run make params'


@pytest.mark.parametrize('name, make', [('params-summary', params.to_summary_markdown),
                                        ('segmenters', registry.to_markdown)])
def test_readme_tables_are_the_generated_tables(name, make):
    assert params_cmd.block(_read(README), name) == make(), (
        'README block %s is stale: run make params' % name)


def test_readme_is_a_guide_of_at_most_15_kb():
    assert len(_read(README).encode('utf-8')) <= 15 * 1024


def test_update_readme_rewrites_every_block_and_refuses_a_file_without_one(tmp_path):
    page = tmp_path / 'page.md'
    page.write_text('a\n<!-- segmenters:begin -->\nSTALE-ROW\n<!-- segmenters:end -->\nb\n'
                    '<!-- params-summary:begin -->\n<!-- params-summary:end -->\n',
                    encoding='utf-8')
    text = params_cmd.with_tables(page.read_text(encoding='utf-8'))
    assert params_cmd.block(text, 'segmenters') == registry.to_markdown()
    assert params_cmd.block(text, 'params-summary') == params.to_summary_markdown()
    assert text.startswith('a\n') and '\nb\n' in text and 'STALE-ROW' not in text
    with pytest.raises(ValueError):
        params_cmd.with_tables('no markers here')


def test_readme_starts_with_the_two_commands():
    with open(README, encoding='utf-8') as f:
        head = f.read(1500)
    demo, test = head.find('make demo'), head.find('make test')
    assert 0 <= demo < 1500 and 0 <= test < 1500


def test_readme_topic_table_names_the_node_topics():
    pytest.importorskip('rclpy')
    from matte_ros.ros import node
    with open(README, encoding='utf-8') as f:
        text = f.read()
    for topic in (node.INPUT_TOPIC, node.MASK_TOPIC, node.ALPHA_TOPIC, node.COMPOSITE_TOPIC,
                  node.FOREGROUND_TOPIC, node.RESET_SERVICE, node.DIAGNOSTICS_TOPIC,
                  node.COMPRESSED_INPUT_TOPIC, node.COMPOSITE_COMPRESSED_TOPIC,
                  node.CAMERA_INFO_TOPIC, node.CAMERA_INFO_OUTPUT_TOPIC, node.ROI_TOPIC,
                  node.BACKGROUND_TOPIC):
        assert re.search(r'\|\s*`%s`' % re.escape(topic), text), topic


@pytest.mark.parametrize('spec', params.PARAMS, ids=lambda p: p.name)
def test_default_is_valid_and_described(spec):
    assert params.validate(spec.name, spec.default) == spec.default
    assert spec.description.strip()
    if spec.choices:
        assert spec.default in spec.choices


@pytest.mark.parametrize('spec', params.PARAMS, ids=lambda p: p.name)
def test_descriptor_matches_the_schema(spec):
    pytest.importorskip('rclpy')
    from matte_ros.ros import parameters
    from rcl_interfaces.msg import ParameterType
    desc = parameters.descriptor(spec)
    assert desc.name == spec.name
    assert desc.read_only == spec.read_only
    assert desc.description.startswith(spec.description)
    expected_type = {params.BOOL: ParameterType.PARAMETER_BOOL,
                     params.INT: ParameterType.PARAMETER_INTEGER,
                     params.FLOAT: ParameterType.PARAMETER_DOUBLE,
                     params.STRING: ParameterType.PARAMETER_STRING,
                     params.INT_ARRAY: ParameterType.PARAMETER_INTEGER_ARRAY}[spec.kind]
    assert desc.type == expected_type
    if spec.kind == params.FLOAT and spec.low is not None:
        (rng,) = desc.floating_point_range
        assert (rng.from_value, rng.to_value) == (spec.low, spec.high)
    if spec.kind == params.INT and spec.low is not None:
        (rng,) = desc.integer_range
        assert (rng.from_value, rng.to_value) == (spec.low, spec.high)
        if rng.step:
            # ROS accepts from_value + k * step only: the default must be one of them
            assert (spec.default - rng.from_value) % rng.step == 0
    for choice in spec.choices:
        assert str(choice) in desc.additional_constraints


@pytest.mark.parametrize('spec', [p for p in params.PARAMS if p.low is not None],
                         ids=lambda p: p.name)
def test_out_of_range_values_are_rejected(spec):
    below = spec.low - (1 if spec.kind == params.INT else 0.5)
    above = spec.high + (1 if spec.kind == params.INT else 0.5)
    for value in (below, above):
        with pytest.raises(params.ParamError, match=spec.name):
            params.validate(spec.name, value)


def test_wrong_types_unknown_names_and_bad_choices_are_rejected():
    with pytest.raises(params.ParamError, match='threshold'):
        params.validate('threshold', 'high')
    with pytest.raises(params.ParamError, match='no_such'):
        params.validate('no_such.param', 1)
    with pytest.raises(params.ParamError, match='segmenter'):
        params.validate('segmenter', 'deeplab')
    with pytest.raises(params.ParamError, match='blur_kernel'):
        params.validate('composite.blur_kernel', 40)   # even kernel
    with pytest.raises(params.ParamError, match='composite.color'):
        params.validate('composite.color', [0, 255])


def test_command_line_assignments_are_coerced_through_the_schema():
    values = params.parse_assignments(['threshold=0.25', 'composite.color=[1,2,3]',
                                       'bgsub.detect_shadows=false', 'mask.dilate=3'])
    assert values == {'threshold': 0.25, 'composite.color': [1, 2, 3],
                      'bgsub.detect_shadows': False, 'mask.dilate': 3}
    with pytest.raises(params.ParamError):
        params.parse_assignments(['threshold'])


def test_config_yaml_reaches_a_namespaced_node():
    """The shipped file must apply to ``/cam/matte`` too, as ``ros2 launch`` namespaces it."""
    rclpy = pytest.importorskip('rclpy')
    from rclpy.context import Context
    context = Context()
    rclpy.init(args=['--ros-args', '-r', '__ns:=/cam', '--params-file', YAML_FILE],
               context=context)
    try:
        node = rclpy.create_node('matte', context=context,
                                 automatically_declare_parameters_from_overrides=True)
        try:
            assert node.get_fully_qualified_name() == '/cam/matte'
            for name, value in params.defaults().items():
                got = node.get_parameter(name).value
                assert (list(got) if params.BY_NAME[name].kind == params.INT_ARRAY
                        else got) == value, name
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_every_string_parameter_refuses_a_nul_byte_by_name():
    # no path, name or encoding holds one, and the OS calls raise an unnamed ValueError
    strings = [spec.name for spec in params._schema()[0] if spec.kind == params.STRING]
    assert 'models.model_dir' in strings and 'composite.image_path' in strings
    for name in strings:
        with pytest.raises(params.ParamError, match='^%s contains a NUL byte' % re.escape(name)):
            params.validate(name, 'a\0b')
