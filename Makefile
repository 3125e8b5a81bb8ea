# mcpjail: `make demo` shows it working, `make test` proves it. Both install what they need.
SWIFT ?= swift
# mcpjail is linked as a static PIE (Package.swift), which glibc refuses to start with a run
# path: no $ORIGIN run path for any build or test.
# Every module, the dependencies' too, instantiates generic types through accessors the
# compiler writes, not by the runtime demangling their names and then searching all ~8,000
# conformance records for each requirement (~0.1 ms a search). The linker keeps one copy of
# each shared specialization, and it may be a dependency's, so a flag on our modules alone
# left 8 such searches in each `mcpjail run`; this leaves none (README, Performance).
# mcpjail links FoundationEssentials, not Foundation (which brings ICU and CoreFoundation
# into every start: README, Performance). TOMLKit imports Foundation, which made every
# module that imports it ask the linker for Foundation, and the linker then took shared
# symbols from it; no module asks now, and the targets that do use Foundation (tests, the
# Swift SDK client) name it in Package.swift. A use of Foundation in mcpjail fails its link.
SWIFTPM_FLAGS := --disable-local-rpath \
	-Xswiftc -Xfrontend -Xswiftc -disable-concrete-type-metadata-mangled-name-accessors \
	-Xswiftc -Xfrontend -Xswiftc -disable-autolink-library -Xswiftc -Xfrontend -Xswiftc Foundation \
	-Xswiftc -Xfrontend -Xswiftc -disable-autolink-library -Xswiftc -Xfrontend -Xswiftc FoundationInternationalization
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: all deps build release test unit integration demo bench seccomp-default clean

all: build

# apt packages (libseccomp-dev, libcap-dev, libsqlite3-dev, python3-venv, ...) and the venv
# with the MCP SDK and the example servers. Idempotent; quick when everything is there.
deps:
	@scripts/deps.sh

# Debug build of every product: mcpjail and the Swift SDK test client.
build: deps
	$(SWIFT) build $(SWIFTPM_FLAGS)

# What `make bench` measures: a release build with the Swift runtime linked in.
release: deps
	$(SWIFT) build $(SWIFTPM_FLAGS) -c release --static-swift-stdlib --product mcpjail

# The Swift unit tests (XCTest / swift-testing).
unit: build
	$(SWIFT) test $(SWIFTPM_FLAGS)

# Real clients (Python SDK, Swift SDK, raw pipes) against real servers through `mcpjail run`.
# pytest exits non-zero when it collects no tests.
integration: build
	$(PY) -m pytest tests/integration

test: unit integration

# A real MCP client session through `mcpjail run time`, its audit record and the chain check.
demo: build
	@$(PY) scripts/demo.py

# direct vs `cat | server | cat` vs `mcpjail run`: launch, latency, throughput, memory;
# then what verifying the pins of a 5,000-file, 50 MB tree costs `mcpjail run`.
bench: release
	$(SWIFT) build $(SWIFTPM_FLAGS) -c release --static-swift-stdlib --product mcpjail-microbench
	$(PY) bench/bench.py
	$(PY) bench/pins.py

# Regenerates the default seccomp program that `run` takes instead of compiling the default
# rules (Sources/MCPJailLinux/SeccompPrecompiledDefault.swift), after a change to the rules
# or libseccomp: `make unit` fails until then.
seccomp-default: build
	MCPJAIL_WRITE_PRECOMPILED_SECCOMP=$(CURDIR)/Sources/MCPJailLinux/SeccompPrecompiledDefault.swift \
		$(SWIFT) test $(SWIFTPM_FLAGS) --filter SeccompPolicyTests/precompiledDefault

clean:
	rm -rf .build
