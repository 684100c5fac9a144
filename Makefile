# alphacut: set-up, models, tests, benchmark.  `make help` lists the targets.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SAM    := .cache/sam-venv/bin/sam
SAM_VERSION := 1.170.0
CHECKOV := .cache/checkov-venv/bin/checkov
CHECKOV_VERSION := 3.3.30

TRAIN_PY := .cache/train-venv/bin/python
# the photos for eval, tests and training (alphacut_dev.data reads the same variable)
ALPHACUT_DATA ?= $(abspath ../shared)
export ALPHACUT_DATA
NODE_CLIENT := tests/clients/removebg_node/node_modules/.package-lock.json

.PHONY: help setup models serve test test-fast test-unit lint bench eval clean costume-features costume-train

help:
	@echo "make setup   - .venv (Python 3.12) with alphacut and dev tools, then the model build"
	@echo "make serve   - set-up if needed, then the whole service on http://127.0.0.1:3000 (PORT overrides)"
	@echo "make test    - set-up if needed, then the whole test suite"
	@echo "make test-unit - the unit tests alone (the venv, no models or stack; ~100 s, half of it the 3,000-call ledger test)"
	@echo "make test-fast - all but the quality and slow tests (-m 'not stack' leaves the stack out too)"
	@echo "make lint    - ruff (lint and format check) and mypy"
	@echo "make models  - build layers/models from pinned npm packages (cached: a second run does nothing)"
	@echo "make bench   - per-stage timings and end-to-end against rembg (prints a table)"
	@echo "make eval    - quality on $$ALPHACUT_DATA/eval (general, person, clothing)"
	@echo "make costume-train - retrain the committed costume head (features ~13 min, then its two members, 30-45 min each)"

$(STAMP): pyproject.toml layers/core/requirements.txt clients/python/pyproject.toml
	@py=$$(scripts/find-python312) && echo "using $$py" && \
	  { [ -x $(PY) ] || "$$py" -m venv $(VENV); } && \
	  $(PY) -m pip install --quiet --upgrade pip && \
	  $(PY) -m pip install --quiet -e '.[dev]' && \
	  $(PY) -m pip install --quiet -e clients/python
	@touch $@

# The SAM CLI pins its own boto3/botocore, so it lives in a venv of its own (template tests use it).
$(SAM):
	@py=$$(scripts/find-python312) && "$$py" -m venv .cache/sam-venv && \
	  .cache/sam-venv/bin/python -m pip install --quiet --upgrade pip && \
	  .cache/sam-venv/bin/python -m pip install --quiet aws-sam-cli==$(SAM_VERSION)

# checkov (template security checks) pins its own dependencies too: a venv of its own.
$(CHECKOV):
	@py=$$(scripts/find-python312) && "$$py" -m venv .cache/checkov-venv && \
	  .cache/checkov-venv/bin/python -m pip install --quiet --upgrade pip && \
	  .cache/checkov-venv/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)

# remove.bg's npm client, pinned by package-lock.json, for the tests that drive it (nothing global)
$(NODE_CLIENT): tests/clients/removebg_node/package-lock.json
	cd tests/clients/removebg_node && npm ci --no-audit --no-fund --loglevel=error

# A real browser for the page's tests: Debian's chromium and its driver (browsers that download
# themselves cannot be fetched here); needs root, as CI and these machines run.
BROWSER := /usr/bin/chromedriver
$(BROWSER):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

setup: $(STAMP) $(SAM) $(CHECKOV) $(NODE_CLIENT) $(BROWSER) models

models: $(STAMP)
	$(PY) -m alphacut_dev.build_models

serve: setup
	$(PY) -m alphacut_dev.local

# two workers (pytest-xdist): one runs the tests of the one local stack, in order (tests/conftest.py),
# the other the rest; the stack's tests wait on it half their time, which the other worker's model runs fill
# A worker that dies (the OOM killer ended one once) stops the run at once with its test named:
# replaced, its scope's tests were handed out again and the run hung to CI's limit
TEST_WORKERS ?= 2
XDIST = -n $(TEST_WORKERS) --max-worker-restart=0
test: setup
	$(VENV)/bin/pytest $(XDIST)

test-unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test-fast: setup
	$(VENV)/bin/pytest $(XDIST) -m "not quality and not slow"

bench: setup
	$(PY) benchmarks/bench_pipeline.py

# MODEL=u2netp (a model of `alphacut models list`): its general and person tables; costume is ISNet's
eval: setup
	$(VENV)/bin/alphacut eval $(ALPHACUT_DATA)/eval/general --type object $(if $(MODEL),--model $(MODEL))
	$(VENV)/bin/alphacut eval $(ALPHACUT_DATA)/eval/person --type person $(if $(MODEL),--model $(MODEL))
	$(if $(MODEL),,$(VENV)/bin/alphacut eval $(ALPHACUT_DATA)/eval/clothing --type costume)

# The costume head (dev only): ISNet's and EfficientNet-Lite0's maps of $(ALPHACUT_DATA)/train/ccp cached
# once, then PyTorch (CPU) in a Python 3.11 venv, because torch 2.13.0+cpu is on this machine's disk
# for 3.11 only; last the head is scored on the held-out tenth of the training photos.
$(TRAIN_PY):
	python3.11 -m venv .cache/train-venv
	$(TRAIN_PY) -m pip install --quiet torch==2.13.0 numpy pillow onnx==1.23.2 onnxruntime==1.31.1 aws-lambda-powertools==3.37.0

costume-features: setup
	$(PY) -m alphacut_dev.costume.features

costume-train: costume-features $(TRAIN_PY)
	PYTHONPATH=dev:layers/core $(TRAIN_PY) -m alphacut_dev.costume.ensemble
	$(PY) -m alphacut_dev.costume.validate

clean:
	rm -rf $(VENV) .cache layers/models/*/ layers/models/manifest.json tests/clients/removebg_node/node_modules
