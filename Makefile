# One-command entry points. `make demo` and `make test` build the environment first (make setup).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Second environment: ROS 2 Jazzy wheels (rclpy 7, Fast DDS 2) for the node integration tests.
JAZZY_VENV := .venv-jazzy
JAZZY_PY := $(JAZZY_VENV)/bin/python
JAZZY_STAMP := $(JAZZY_VENV)/.installed
# Only the files marked ros_integration are collected there (the others import Kilted-only tools).
JAZZY_TESTS = $(shell grep -l 'pytest.mark.ros_integration' test/test_*.py)

.PHONY: setup setup-jazzy setup-oldest setup-mediapipe demo test test-jazzy test-oldest clean-oldest lint params clean reliability bench bench-cameras \
	gpu-bundle gpu-check

setup: $(STAMP)

$(STAMP): requirements.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# A further environment from one requirements file, matte_ros installed editable:
# $(call make-venv,DIR,PYTHON,REQUIREMENTS) in the recipe of DIR/.installed.
define make-venv
	test -x $(1)/bin/python || $(2) -m venv $(1)
	$(1)/bin/python -m pip install --quiet -r $(3)
	$(1)/bin/python -m pip install --quiet --no-deps -e .
	touch $(1)/.installed
endef

setup-jazzy: $(JAZZY_STAMP)

$(JAZZY_STAMP): requirements-jazzy.txt setup.py
	$(call make-venv,$(JAZZY_VENV),$(PYTHON),requirements-jazzy.txt)

# Third environment: the oldest supported stack (Python 3.10, NumPy 1.21, OpenCV 4.5, as on
# Humble / JetPack 6) for the ROS-free core's tests.  Skipped where no Python 3.10 runs
# (python3.10 on PATH, or pyenv's).
PYTHON_OLDEST ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.10*/bin/python3.10) python3.10)
OLDEST_VENV := .venv-oldest
OLDEST_PY := $(OLDEST_VENV)/bin/python
OLDEST_STAMP := $(OLDEST_VENV)/.installed
OLDEST_TESTS = $(addprefix test/test_,$(addsuffix .py,atomic_file bgsub bgsub_errors blobs compositing \
	compressed core_without_ros datasets encodings engine_cache first_run_regressions \
	gpu_standins heap instance memory models onnx_model params rvm rvm_parity rvm_reset scoring selfie \
	shared_models stabilizer stabilizer_reference stats still_scene))

setup-oldest: $(OLDEST_STAMP)

$(OLDEST_STAMP): requirements-oldest.txt setup.py
	$(call make-venv,$(OLDEST_VENV),$(PYTHON_OLDEST),requirements-oldest.txt)

HAVE_OLDEST := $(shell $(PYTHON_OLDEST) -c 'import sys; print(sys.version_info[:2] == (3, 10))' 2>/dev/null)
ifeq ($(HAVE_OLDEST),True)
test-oldest: setup-oldest
	$(OLDEST_PY) -c "import sys, numpy, cv2; assert sys.version_info[:2] == (3, 10) and numpy.__version__ == '1.21.6' and cv2.__version__ == '4.5.5', 'stale $(OLDEST_VENV): make clean-oldest'"
	$(OLDEST_PY) -m pytest -q -ra -p no:cacheprovider $(PYTEST_ARGS) $(OLDEST_TESTS)
else
test-oldest:
	@echo "test-oldest skipped: no Python 3.10 ($(PYTHON_OLDEST)) on this machine"
endif

clean-oldest:
	rm -rf $(OLDEST_VENV)

# MediaPipe's own solution (NumPy < 2), only for `make bench`'s selfie comparison.
MP_VENV := .venv-mediapipe
MP_STAMP := $(MP_VENV)/.installed

setup-mediapipe: $(MP_STAMP)

$(MP_STAMP): requirements-mediapipe.txt
	test -x $(MP_VENV)/bin/python || $(PYTHON) -m venv $(MP_VENV)
	$(MP_VENV)/bin/python -m pip install --quiet -r requirements-mediapipe.txt
	touch $(MP_STAMP)

demo: setup
	$(PY) -m matte_ros.demo $(DEMO_ARGS)

# Everything on Kilted (.venv), the node integration tests again on Jazzy (.venv-jazzy), then
# the ROS-free core on the oldest supported stack (.venv-oldest, where python3.10 exists).
test: setup setup-jazzy
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)
	$(JAZZY_PY) -m pytest -q -ra -m ros_integration $(PYTEST_ARGS) $(JAZZY_TESTS)
	$(MAKE) --no-print-directory test-oldest

test-jazzy: setup-jazzy
	$(JAZZY_PY) -m pytest -q -ra -m ros_integration $(PYTEST_ARGS) $(JAZZY_TESTS)

# Full benchmark (~15 min): writes docs/benchmarks.md and .png.  rvm runs its fastest CPU
# path, OpenVINO int8, derived first (if absent) from CDnet pedestrians frames 300-399
# (people in view; no DAVIS frame, so the DAVIS J comparison is held out).
RVM_INT8 = --param rvm.runtime=openvino --param rvm.precision=int8 \
	--rvm-calibration ../shared/data/cdnet2014/baseline/pedestrians/input --rvm-calibration-skip 300
bench: setup setup-mediapipe
	$(PY) -m matte_ros.cli.main bench --mediapipe-python $(MP_VENV)/bin/python \
		--davis ../shared/data/davis2016 $(RVM_INT8) $(BENCH_ARGS)

# Many cameras (issue 21): one process for 1, 2, 4 cameras vs one process per camera;
# writes its section of docs/benchmarks.md (~15 min).
bench-cameras: setup
	$(PY) -m matte_ros.cli.main bench --cameras 1,2,4 --seconds 20 --repeats 2 $(BENCH_ARGS)

# Full-size robustness scenarios against the live node (~15 min); writes docs/reliability.md.
reliability: setup
	$(PY) test/reliability_scenarios.py --out docs/reliability.md $(RELIABILITY_ARGS)

# GPU check (docs/gpu.md): `make gpu-bundle` here collects what an NVIDIA machine lacks
# (RVM model, frames, onnx2torch wheel) into gpu_bundle/; `make gpu-check` there runs it
# with the machine's own python3 (no venv, nothing installed).
gpu-bundle:
	$(PY) tools/gpu_check.py bundle

gpu-check:
	python3 tools/gpu_check.py run --out out/gpu_check $(GPU_CHECK_ARGS)

lint: setup
	$(PY) -m pytest -q -m linter

params: setup
	$(PY) -m matte_ros.cli.main params --format yaml > config/matte.yaml
	$(PY) -m matte_ros.cli.main params --update-readme README.md
	$(PY) -m matte_ros.cli.main params --update-readme docs/parameters.md

clean:
	rm -rf out build install log .pytest_cache
