# `make corpus` and `make test` are all a fresh machine needs: each first builds .venv
# (again whenever pyproject.toml changes), then does its job. torch (the `train` extra) is
# the CPU wheel, so the loader's and trainer's tests run without a GPU.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= out/corpus
CONFIG ?= configs/default.toml

.PHONY: corpus test audit train bench lint clean

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

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/e2e.py
	$(BIN)/python bench/ingest_language.py --config $(CONFIG)
	$(BIN)/python bench/dedup.py --config $(CONFIG)
	$(BIN)/python bench/tokenization.py --config $(CONFIG)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) out .pytest_cache
