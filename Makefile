# `make corpus` and `make test` are all a fresh machine needs: each first builds .venv
# (again whenever pyproject.toml changes), then does its job. torch (the `train` extra) is
# the CPU wheel, so the loader's and trainer's tests run without a GPU.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= out/corpus
CONFIG ?= configs/default.toml

.PHONY: corpus test audit train bench lint clean browser

# pip's and setuptools' chatter goes to a log, shown only when the install fails
$(STAMP): pyproject.toml
	@echo "setting up $(VENV) (log: $(VENV)/install.log)"
	@$(PYTHON) -m venv $(VENV)
	@{ $(BIN)/python -m pip install --upgrade pip && $(BIN)/python -m pip install -e '.[test,train]'; } \
		> $(VENV)/install.log 2>&1 || { tail -40 $(VENV)/install.log; echo "install failed"; exit 1; }
	@touch $(STAMP)

corpus: $(STAMP)
	$(BIN)/corpus build --config $(CONFIG) --out $(OUT)

audit: $(STAMP)
	$(BIN)/corpus audit $(OUT)

train: $(STAMP)
	$(BIN)/corpus train configs/train-tiny.toml

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# the browser tests (tests/web/test_browser.py) drive Debian's chromium through its chromedriver;
# a browser's own download step cannot reach the internet here, so apt-get installs them (CI runs
# as root). Quiet and idempotent: nothing happens when both are there; without root or apt-get
# those tests are skipped, and say why.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		mkdir -p $(VENV); echo "installing chromium and chromium-driver for the browser tests (log: $(VENV)/apt.log)"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver; } > $(VENV)/apt.log 2>&1 \
		|| echo "could not install chromium (see $(VENV)/apt.log): the browser tests will be skipped"; \
	else echo "no chromium/chromedriver and no root apt-get: the browser tests will be skipped"; fi

bench: $(STAMP)
	$(BIN)/python bench/e2e.py
	$(BIN)/python bench/ingest_language.py --config $(CONFIG)
	$(BIN)/python bench/dedup.py --config $(CONFIG)
	$(BIN)/python bench/tokenization.py --config $(CONFIG)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) out .pytest_cache
