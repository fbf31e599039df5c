# ablasim - thermal ablation zone simulator.  `make help` lists the targets.
#
# Library code lives in src/: model/ (schema: config, grid, tissue, shape, schedule, scenario),
# formats/ (mesh, NIfTI, checkpoint, HDF5 helpers, file guard), results/ (HDF5/XDMF/JSON result),
# kernels/, solvers/, driver/, sources/, analysis/, anatomy/, sweep/; the command-line program in
# src/cli.
# Flags come from pkg-config for every dependency that ships a .pc file.

CC       ?= gcc
PREFIX   ?= /usr/local
PKGS     := fftw3 hdf5 yaml-0.1 nlopt
OPT      ?= -O3 -march=native
CFLAGS   ?= $(OPT)
# nifti_clib (libnifti2-dev) ships no .pc file: its include dir and libraries are named here.
ALL_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -fopenmp -Wall -Wextra -Iinclude \
             -I/usr/include/nifti $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
             $(SAN_FLAGS) $(CFLAGS)
LDLIBS_ALL = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lnifti2 -lznz -lz -lm
TEST_LIBS  = $(shell pkg-config --libs cunit 2>/dev/null)

ifeq ($(SANITIZE),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -g
OPT       := -O1
BUILD     := build/san
BIN       := build/san/bin/ablasim
else
BUILD     := build/rel
BIN       := bin/ablasim
endif

# MPI build for `ablasim sweep` across ranks (make MPI=1): mpicc, -DABLASIM_MPI, own build
# directory. make check also builds $(MPI_BIN) when mpicc exists and hands it to the tests as
# ABLASIM_MPI_BIN (the sweep tests fail with a message when it is missing).
MPICC      ?= mpicc
MPI_BUILD  ?= build/mpi
MPI_BIN    := $(MPI_BUILD)/bin/ablasim
ifeq ($(MPI),1)
CC         := $(MPICC)
ALL_CFLAGS += -DABLASIM_MPI
BUILD      := $(MPI_BUILD)
BIN        := $(MPI_BIN)
endif
HAVE_MPICC := $(shell command -v $(MPICC) 2>/dev/null)
ifneq ($(HAVE_MPICC),)
export ABLASIM_MPI_BIN := $(abspath $(MPI_BIN))
endif

LIB_SRC  := $(wildcard src/model/*.c src/formats/*.c src/results/*.c src/kernels/*.c src/driver/*.c src/sources/*.c src/analysis/*.c \
              src/anatomy/*.c src/sweep/*.c src/solvers/*.c src/plan/*.c)
CLI_SRC  := $(wildcard src/cli/*.c)
TEST_SRC := $(wildcard tests/unit/*.c)
BENCH_SRC:= $(wildcard bench/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libablasim.a
TESTBIN  := $(BUILD)/tests/run_tests
# LD_PRELOAD fault injection for the safety suite (tests/faultshim/faultshim.c), found by the
# test binary beside itself; never sanitized (it is preloaded into sanitized binaries too)
FAULTSHIM:= $(BUILD)/tests/libfaultshim.so
BENCHBINS:= $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all check test-run check-docs bench bench-run demo demo-run deps install clean help format \
        validate scenarios

# A bare `make` only builds: `all` is the first rule and the declared default goal.
.DEFAULT_GOAL := all
all: $(BIN)

# run every clinical scenario and regenerate the README table (minutes; by hand, not in CI)
scenarios: $(BIN)
	scripts/scenario_table.py --bin $(BIN)

# run the published ablation cases (configs/validation/cases.yaml) and write
# build/validate/table.md|csv with the trend checks (about 7 minutes with --jobs 2; by hand,
# never in `make check`); options of scripts/validate.py go in VALIDATE_ARGS, e.g. VALIDATE_ARGS="--jobs 2"
validate: $(BIN)
	scripts/validate.py --bin $(BIN) $(VALIDATE_ARGS)

help:
	@echo "make            build bin/ablasim"
	@echo "make demo       install missing dependencies, build, run the liver case (configs/liver_mwa_vein.yaml)"
	@echo "make check      install missing dependencies, build, run the CUnit suite and the docs' examples"
	@echo "make check-docs run every shell example of README.md and docs/*.md (scripts/doc_examples.py)"
	@echo "make readme-keys rewrite the generated key tables (README \"Scenario reference\", docs/PLANNING.md, SWEEPS.md, RFA.md, MWA.md, CRYO.md, VESSEL.md) from the key declarations"
	@echo "make validate   run the published ablation cases, build/validate/table.md (minutes; docs/VALIDATION.md)"
	@echo "make bench      memory bandwidth + solver MLUPS, CSV under bench/results/"
	@echo "make deps       install (root) or print (non-root) the Debian packages"
	@echo "make install PREFIX=/usr/local ; make clean ; make SANITIZE=1 check"
	@echo "make fuzz       libFuzzer harnesses (clang), FUZZ_SECONDS=60 each; docs/RELIABILITY.md"
	@echo "make fuzz-replay replay the fuzz corpus (tests/fuzz/corpus; part of make check)"
	@echo "make scenarios  run every clinical scenario, rewrite README's scenario table (minutes)"

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS_ALL)

$(TESTBIN): $(TEST_OBJ) $(LIB) $(FAULTSHIM)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $(TEST_OBJ) $(LIB) $(TEST_LIBS) $(LDLIBS_ALL)

$(FAULTSHIM): tests/faultshim/faultshim.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -Wall -Wextra -fPIC -shared -o $@ $< -ldl -lpthread

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS_ALL)

deps:
	@scripts/install-deps.sh

# check / demo / bench first make sure the Debian packages are there, then re-enter make so that
# pkg-config is evaluated with the libraries installed.
check:
	@scripts/install-deps.sh --if-missing
	@$(MAKE) --no-print-directory test-run
ifneq ($(SANITIZE),1)
	@$(MAKE) --no-print-directory check-docs
endif

# every shell example of README.md and docs/*.md, each file in a scratch copy of the tree
# (rules and skip markers: scripts/doc_examples.py; 1-2 minutes on 2 cores). The examples use the
# release build (bin/ablasim, build/rel), so SANITIZE=1 check does not repeat them.
check-docs:
	@$(MAKE) --no-print-directory SANITIZE= MPI= bin/ablasim build/rel/tests/run_tests
	/usr/bin/python3 scripts/doc_examples.py

# the key tables of README "Scenario reference", docs/PLANNING.md, docs/SWEEPS.md and the source
# types' docs (RFA, MWA, CRYO, VESSELS) from the key declarations (cfg_keydecl tables in src/model,
# src/sources, src/plan, src/sweep); the config suite of make check fails when a document differs
.PHONY: readme-keys
readme-keys: $(BIN)
	$(BIN) keys --markdown | /usr/bin/python3 scripts/readme_keys.py README.md
	$(BIN) keys --plan | /usr/bin/python3 scripts/readme_keys.py docs/PLANNING.md plan-keys
	$(BIN) keys --sweep | /usr/bin/python3 scripts/readme_keys.py docs/SWEEPS.md sweep-keys
	for t in rfa mwa cryo vessel; do \
	  $(BIN) keys --source $$t | /usr/bin/python3 scripts/readme_keys.py docs/$$(echo $$t | tr a-z A-Z).md $$t-keys || exit 1; \
	done

test-run: $(BIN) $(TESTBIN)
	ABLASIM_BIN=$(abspath $(BIN)) ABLASIM_ROOT=$(CURDIR) $(TESTBIN)

# the MPI binary for the sweep tests (see MPI_BIN above): a separate make with its own
# objects, never sanitized (its objects must not mix with a SANITIZE=1 build)
.PHONY: mpi-bin
test-run: mpi-bin
mpi-bin:
ifneq ($(HAVE_MPICC),)
	@$(MAKE) --no-print-directory MPI=1 SANITIZE= BUILD=$(MPI_BUILD) BIN=$(MPI_BIN) $(MPI_BIN)
endif

demo:
	@scripts/install-deps.sh --if-missing
	@$(MAKE) --no-print-directory demo-run

# the liver case end to end (docs/SCENARIOS.md): microwave ablation of the metastasis next to
# the hepatic vein on the liver phantom, margin verdict with the vein as critical structure,
# margin on the vessel side vs the far side, report images. About 10 s CPU on 2 cores.
demo-run: $(BIN)
	@mkdir -p out
	$(BIN) run configs/liver_mwa_vein.yaml -o out/liver_mwa_vein.h5
	$(BIN) margin out/liver_mwa_vein.h5 --critical blood:50:
	scripts/side_margin.py out/liver_mwa_vein.h5 --dir 1 0 0
	scripts/ablasim_report.py out/liver_mwa_vein.h5

bench:
	@scripts/install-deps.sh --if-missing
	@$(MAKE) --no-print-directory bench-run

bench-run: $(BENCHBINS) $(BIN) mpi-bin
	@mkdir -p bench/results
	@for b in $(BENCHBINS); do ABLASIM_ROOT=$(CURDIR) $$b || exit 1; done
	@ABLASIM_BIN=$(abspath $(BIN)) ABLASIM_MPI_BIN=$(abspath $(MPI_BIN)) bench/bench_sweep.sh
	@ABLASIM_BIN=$(abspath $(BIN)) bench/bench_wholerun.sh
	@ABLASIM_BIN=$(abspath $(BIN)) bench/bench_plan.sh

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/ablasim/configs
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/ablasim
	install -m 644 configs/*.yaml $(DESTDIR)$(PREFIX)/share/ablasim/configs/
	install -d $(DESTDIR)$(PREFIX)/share/ablasim/configs/plans
	install -m 644 configs/plans/*.yaml $(DESTDIR)$(PREFIX)/share/ablasim/configs/plans/
	install -d $(DESTDIR)$(PREFIX)/share/ablasim/meshes $(DESTDIR)$(PREFIX)/share/ablasim/scripts
	install -m 644 meshes/*.h5 $(DESTDIR)$(PREFIX)/share/ablasim/meshes/
	install -m 755 scripts/ablasim_report.py $(DESTDIR)$(PREFIX)/share/ablasim/scripts/
	install -m 644 scripts/ablasim_h5.py $(DESTDIR)$(PREFIX)/share/ablasim/scripts/

format:
	clang-format -i $(LIB_SRC) $(CLI_SRC) $(TEST_SRC) $(BENCH_SRC) include/ablasim/*.h src/*/*.h

clean:
	rm -rf build bin

# libFuzzer harnesses (make fuzz, clang) and their corpus replay, part of make check (built
# with $(CC), so no clang is needed there); see tests/fuzz/fuzz.mk and docs/RELIABILITY.md
include tests/fuzz/fuzz.mk
test-run: fuzz-replay

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)
