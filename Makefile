# Entry points: `make run` (main job) and `make test` (all tests). Both install what is missing
# (Debian packages, through scripts/install-deps.sh) and build first.
BUILD ?= build
JOBS ?= 2
RANKS ?= 2
BUILD_TYPE ?= RelWithDebInfo
# ccache keeps its cache outside the clone, so fresh clones (CI) reuse earlier compiles.
# Paths are made relative to the clone (BASEDIR, NOHASHDIR) so that hits survive a new clone.
CCACHE_DIR ?= $(HOME)/.cache/hac-ccache
CCACHE_BASEDIR ?= $(CURDIR)
CCACHE_NOHASHDIR ?= 1
export CCACHE_DIR CCACHE_BASEDIR CCACHE_NOHASHDIR
ifeq ($(CI),true)
  WERROR ?= ON
else
  WERROR ?= OFF
endif
CMAKE_ARGS ?=

.PHONY: all deps test-deps configure build test test-unit test-mpi run study-large selfcheck clean

all: build

deps:
	@bash scripts/install-deps.sh

test-deps:
	@bash scripts/install-deps.sh --test

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DRUNNER_WERROR=$(WERROR) $(CMAKE_ARGS)

configure: deps $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j$(JOBS)

# Test tools first, so that configure registers the tests that need them.
test: test-deps
	$(MAKE) build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -L unit

test-mpi: build
	cd $(BUILD) && ctest --output-on-failure -L mpi

# The main job: the embedded study (configs/sweeps/study.yaml): the Fashion-MNIST dataset, the
# tiny CLIP and MERU originals (cached in results/originals), every grid point (skipped when
# COMPLETED, resumed when interrupted), then the tables and figures in results/study/collected.
STUDY ?= configs/sweeps/study.yaml
STUDY_DIR ?= results/study
run: build
	@$(BUILD)/hac data info data/fashion_mnist.h5 2>/dev/null | grep -q 'caption_set: 2' || \
	  $(BUILD)/hac data fashion-mnist --out data/fashion_mnist.h5
	@start=$$(date +%s); $(BUILD)/hac sweep $(STUDY) --jobs $(JOBS); rc=$$?; \
	  $(BUILD)/hac collect $(STUDY_DIR) || rc=1; \
	  echo "study: $$(( $$(date +%s) - start )) s; table: $(STUDY_DIR)/collected/table_main.md, figures: $(STUDY_DIR)/collected/figures/"; \
	  exit $$rc

# The larger study (configs/sweeps/study_large.yaml): more originals and forget sets, for the
# claims the embedded study finds inconclusive at its size; tables in results/study_large/collected.
study-large:
	$(MAKE) run STUDY=configs/sweeps/study_large.yaml STUDY_DIR=results/study_large

# The communication self-check across $(RANKS) MPI ranks.
selfcheck: build
	launch/mpirun.sh -np $(RANKS) $(BUILD)/hac selfcheck

clean:
	rm -rf $(BUILD)
