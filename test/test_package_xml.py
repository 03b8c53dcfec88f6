"""package.xml names every module the package imports, under its rosdep key (or says why not)."""

import ast
import glob
import os
import sys
import xml.etree.ElementTree as ElementTree

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Imported module → rosdep key, where the two differ.
ROSDEP_KEYS = {
    'numpy': 'python3-numpy',
    'cv2': 'python3-opencv',
    'tqdm': 'python3-tqdm',
    'onnxruntime': 'python3-onnxruntime-pip',
}
#: Imported (lazily) but without a rosdep key: installed with pip from requirements-robot.txt
#: (or JetPack); package.xml says so in a comment.
PIP_ONLY = {'rosbags', 'ai_edge_litert', 'onnx', 'vpi', 'tensorrt', 'skimage', 'torch',
            'torchvision', 'onnx2torch', 'mediapipe', 'openvino', 'nncf'}


def _imported_modules():
    files = glob.glob(os.path.join(ROOT, 'matte_ros', '**', '*.py'), recursive=True)
    files += glob.glob(os.path.join(ROOT, 'launch', '*.py'))
    names = set()
    for path in files:
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name.split('.')[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split('.')[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != 'matte_ros'}


def _exec_depends():
    root = ElementTree.parse(os.path.join(ROOT, 'package.xml')).getroot()
    return {e.text.strip() for tag in ('exec_depend', 'depend') for e in root.iter(tag)}


def test_every_imported_module_is_an_exec_depend_or_documented_pip_only():
    depends = _exec_depends()
    missing = sorted(m for m in _imported_modules() - PIP_ONLY
                     if ROSDEP_KEYS.get(m, m) not in depends)
    assert not missing, 'package.xml lacks exec_depend for: %s' % ', '.join(missing)


def test_no_exec_depend_is_unused():
    used = {ROSDEP_KEYS.get(m, m) for m in _imported_modules()}
    assert _exec_depends() - used == set()


def test_pip_only_modules_are_in_the_robot_requirements():
    with open(os.path.join(ROOT, 'requirements-robot.txt'), encoding='utf-8') as f:
        text = f.read().lower()
    for module in ('rosbags', 'ai-edge-litert', 'onnx', 'openvino', 'nncf'):
        assert module in text, module
    with open(os.path.join(ROOT, 'package.xml'), encoding='utf-8') as f:
        xml_text = f.read()
    for module in ('rosbags', 'ai-edge-litert', 'onnx', 'openvino', 'nncf'):
        assert module in xml_text, 'package.xml comment should name pip-only ' + module
