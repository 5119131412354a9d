# The two commands of README.md:
#   make demo   install, then run the worker's main job on the embedded default (no services)
#   make test   install, then run the whole test suite (it starts the servers it needs)
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed-stamp
# Thumbor, the real imagor-protocol peer of the imagorvideo engine's tests, in its own
# virtualenv: its pins (Pillow, tornado, …) must not decide the worker's.
THUMBOR_VENV    := .venv-thumbor
THUMBOR_STAMP   := $(THUMBOR_VENV)/.installed-stamp
THUMBOR_VERSION ?= 7.8.0
# LocalStack, the original system's SQS, run natively for the tests: it needs Python >= 3.12
# (found by the script, which skips with one line where there is none) and pins of its own.
LOCALSTACK_VENV  := .venv-localstack
LOCALSTACK_STAMP := $(LOCALSTACK_VENV)/.installed-stamp

.PHONY: demo test lint bench clean thumbor localstack image

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	scripts/demo.sh

$(THUMBOR_STAMP):
	$(PYTHON) -m venv $(THUMBOR_VENV)
	$(THUMBOR_VENV)/bin/pip install --quiet 'thumbor==$(THUMBOR_VERSION)'
	touch $(THUMBOR_STAMP)

thumbor: $(THUMBOR_STAMP)

# The script writes the stamp only once LocalStack is installed; without a Python >= 3.12 it
# leaves none, so the next `make test` looks again.
$(LOCALSTACK_STAMP): scripts/ensure-localstack.sh
	scripts/ensure-localstack.sh $(LOCALSTACK_VENV)

localstack: $(LOCALSTACK_STAMP)

# The container image of Dockerfile.worker (podman and buildah; see docs/operations.md), built
# or reused from podman's store. `make test` makes it before the tests, outside their timeouts;
# where podman cannot run, it says nothing and tests/integration/test_container_image.py skips;
# a failed build does not stop the suite (that test fails, with the build's log).
image:
	scripts/build-image.sh

test: $(STAMP) $(THUMBOR_STAMP) $(LOCALSTACK_STAMP)
	scripts/ensure-node-packages.sh
	scripts/build-image.sh --if-possible >/dev/null || true
	scripts/test.sh

# The performance benchmarks of docs/performance.md (about 8 minutes; BENCH_ARGS=--quick: 3).
bench: $(STAMP) $(THUMBOR_STAMP)
	scripts/ensure-postgres.sh
	scripts/ensure-tools.sh --bench
	$(VENV)/bin/python -m bench.run $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf var .pytest_cache
