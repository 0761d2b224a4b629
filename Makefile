# Two commands on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-load bench bench-loops bench-scale bench-mitigate bench-cli bench-web bench-kb bench-training bench-deep bench-llm bench-peers bench-truth clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) on PATH (or: make PYTHON=python3 ...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0  # the CPU build, before anything pulls CUDA
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)  ## Reproduce ProPublica's COMPAS figures and scan a model trained without race.
	$(BIN)/failwell demo

test: $(STAMP)  ## Lint, then the whole test suite (SQLite, real PostgreSQL, real Chromium).
	$(BIN)/ruff check src tests benchmarks examples
	FAILWELL_TEST_PG="$${FAILWELL_TEST_PG:-$$(bash scripts/test-postgres.sh || true)}" \
	FAILWELL_CHROMIUM="$${FAILWELL_CHROMIUM:-$$(bash scripts/test-browser.sh || true)}" \
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	  $(BIN)/python -m pytest -n 2 -q  # one thread per worker: OpenMP pools in two workers fought

test-load: $(STAMP)  ## The web load test for 30 s (20 writers, a restart) on SQLite and PostgreSQL.
	FAILWELL_TEST_PG="$${FAILWELL_TEST_PG:-$$(bash scripts/test-postgres.sh || true)}" \
	FAILWELL_LOAD_SECONDS=30 $(BIN)/python -m pytest -q -s tests/web/test_web_load.py

bench: $(STAMP)  ## Speed and memory targets (see benchmarks/README.md).
	$(BIN)/python benchmarks/bench_scan.py

bench-kb: $(STAMP)  ## Knowledge base: import, search p95 at 100k (SQLite, PostgreSQL), quality.
	FAILWELL_TEST_PG="$${FAILWELL_TEST_PG:-$$(bash scripts/test-postgres.sh || true)}" \
	  $(BIN)/python benchmarks/bench_kb.py

bench-training: $(STAMP)  ## Training-monitor overhead against the same loop without it.
	$(BIN)/python benchmarks/bench_training.py

bench-deep: $(STAMP)  ## PGD-10 vs captum called directly; the whole digits deep scan.
	$(BIN)/python benchmarks/bench_deep.py

bench-llm: $(STAMP)  ## Demo LLM training time; HTTP client throughput vs plain httpx.
	$(BIN)/python benchmarks/bench_llm.py

bench-web: $(STAMP)  ## Web pages' p95 at 1, 2 and 4 in flight, 100k incidents on PostgreSQL.
	FAILWELL_TEST_PG="$${FAILWELL_TEST_PG:-$$(bash scripts/test-postgres.sh || true)}" \
	  $(BIN)/python benchmarks/bench_web.py

bench-truth: $(STAMP)  ## The scanner and the loop audit on their frozen sets.
	$(BIN)/python tests/scanner_truth.py
	$(BIN)/python tests/loop_truth.py

bench-loops: $(STAMP)  ## Loop audit of 10 million impressions (target < 30 s).
	$(BIN)/python benchmarks/bench_loops.py

bench-scale: $(STAMP)  ## Partitioned scan of 50M rows x 30 columns: local vs dask x2, peak RSS < 2 GB.
	$(BIN)/python benchmarks/bench_scale.py

bench-mitigate: $(STAMP)  ## The COMPAS mitigation comparison, seven methods (target < 60 s).
	$(BIN)/python benchmarks/bench_mitigate.py

bench-cli: $(STAMP)  ## Cold starts: each command a fresh process, median of 5, against a baseline.
	$(BIN)/python benchmarks/bench_cli.py

bench-peers: $(STAMP)  ## failwell vs Giskard 2.x and Deepchecks, each in its own venv.
	$(BIN)/python benchmarks/bench_peers.py

clean:
	rm -rf $(VENV) failwell-demo .pytest_cache .ruff_cache
