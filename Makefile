# Two commands do all the set-up: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_output

.PHONY: install test test-fast demo lint format bench clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# pytest-xdist, one worker more than the cores (tests/conftest.py): whole modules, longest first,
# to whichever worker is free; fixtures that train are made once and shared by the workers.
test: $(STAMP)
	$(PY) -m pytest -q -n auto --dist loadfile --no-loadscope-reorder --durations=30

# Everything but the tests marked slow (those that train a model).
test-fast: $(STAMP)
	$(PY) -m pytest -q -n auto -m "not slow"

# The main job, offline: direction dataset -> train -> evaluate -> predict one image.
demo: $(STAMP)
	$(PY) train_model.py --demo --data_path $(DEMO_DIR)/direction --output_dir $(DEMO_DIR)/run --overwrite
	$(PY) test_script.py --data_path $(DEMO_DIR)/direction/test --model_path $(DEMO_DIR)/run \
		--output_dir $(DEMO_DIR)/evaluation
	$(PY) predict.py --image_path $(DEMO_DIR)/direction/test/up/up_00255.jpg \
		--model_path $(DEMO_DIR)/run --save_dir $(DEMO_DIR)/predictions

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) benchmarks/bench_pipeline.py

clean:
	rm -rf $(DEMO_DIR) .pytest_cache .ruff_cache
