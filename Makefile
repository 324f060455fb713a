# One command per chore. CI runs `make check test` (see .ci/run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCENARIO ?= tests/scenarios/bad-deploy-5xx

.PHONY: demo test check lint format bench system clean scenarios

# The bundled scenarios' metrics (about 21 MB each) are generated deterministically, not
# committed: tests/scenarios/generate.py writes byte-identical files every time.
SCENARIO_METRICS := $(foreach name,$(shell $(PYTHON) tests/scenarios/generate.py --names 2>/dev/null),tests/scenarios/$(name)/metrics.om)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "installing diagnose and its test tools into $(VENV)…" >&2
	@# llama.cpp's native build crashes on some CPUs: build it portable (AVX2, no AVX-512/AMX).
	@CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF" \
		$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

system:
	@scripts/ensure-system.sh

$(SCENARIO_METRICS): tests/scenarios/generate.py | $(STAMP)
	$(BIN)/python tests/scenarios/generate.py --only $(notdir $(@D))

## scenarios: generate the bundled scenarios' metrics
scenarios: $(SCENARIO_METRICS)

## demo: stand the bundled scenario up on real servers, diagnose it, ask for approval
demo: $(STAMP) system scenarios
	$(BIN)/diagnose run --scenario $(SCENARIO)

## test: the whole test suite, real servers included
test: $(STAMP) system scenarios
	$(BIN)/pytest

## check: ruff, mypy --strict, import-linter contracts
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) system scenarios
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
