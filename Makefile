# Two commands do everything on a fresh machine:
#   make figures   create .venv, install pinned dependencies and Fashion-MNIST, run the default workflow
#   make test      create the same .venv and run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# Rules call the `labelworth` console script, so the venv must be first on PATH for Snakemake's jobs.
export PATH := $(BIN):$(PATH)
FASHION_MNIST_DEBIAN := /usr/share/datasets/fashion-mnist
# --no-compile: Python compiles a module when a run first imports it, instead of pip compiling every
# module it installs (a fresh `make venv` 0.77x the wall time, benchmarks/results/venv_install.md).
PIP_INSTALL := $(BIN)/python -m pip --disable-pip-version-check -qq install --no-compile

.PHONY: figures test venv data dry-run report verify clean-results

venv: $(VENV)/.installed

$(VENV)/.installed: envs/requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r envs/requirements.txt
	$(PIP_INSTALL) --no-deps -e .
	touch $@

# Fashion-MNIST: the Debian package when we are root with apt, else torchvision's download.
data: venv
	@if [ -f $(FASHION_MNIST_DEBIAN)/train-images-idx3-ubyte.gz ]; then \
	  echo "Fashion-MNIST found in $(FASHION_MNIST_DEBIAN)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; then \
	  echo "Fashion-MNIST installed from Debian into $(FASHION_MNIST_DEBIAN)"; \
	else \
	  labelworth fetch-data --dataset fashion_mnist --root resources/fashion_mnist; \
	fi

# `make figures CONFIG=my.yaml` runs another config; check-config first gives one line for a missing
# file or a YAML syntax error, which plain snakemake reports with its own traceback.
CONFIG ?=
CONFIG_OPTION = $(if $(CONFIG),--configfile $(CONFIG))

figures: data
	$(if $(CONFIG),labelworth check-config --configfile $(CONFIG))
	snakemake $(CONFIG_OPTION)

dry-run: venv
	$(if $(CONFIG),labelworth check-config --configfile $(CONFIG))
	snakemake --dry-run $(CONFIG_OPTION)

report: venv
	snakemake --report report.html

# Check every checksummed result; `make verify REPAIR=1` removes the bad ones and prints the rebuild command.
verify: venv
	labelworth verify $(if $(REPAIR),--repair)

test: venv
	$(BIN)/python -m pytest

clean-results:
	rm -rf results logs work .snakemake
