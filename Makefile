# Entry points: `make run` (main job) and `make test` (all tests). Both install what is missing
# (Debian packages, through scripts/install-deps.sh) and build first.
BUILD ?= build
JOBS ?= 2
RANKS ?= 2
BUILD_TYPE ?= RelWithDebInfo
# ccache keeps its cache outside the clone, so fresh clones (CI) reuse earlier compiles.
CCACHE_DIR ?= $(HOME)/.cache/hac-ccache
export CCACHE_DIR
ifeq ($(CI),true)
  WERROR ?= ON
else
  WERROR ?= OFF
endif
CMAKE_ARGS ?=

.PHONY: all deps configure build test test-unit test-mpi run clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DRUNNER_WERROR=$(WERROR) $(CMAKE_ARGS)

configure: deps $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j$(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -L unit

test-mpi: build
	cd $(BUILD) && ctest --output-on-failure -L mpi

# The main job. Until the study lands (later issues) it is the communication self-check across
# $(RANKS) MPI ranks.
run: build
	launch/mpirun.sh -np $(RANKS) $(BUILD)/hac selfcheck

clean:
	rm -rf $(BUILD)
