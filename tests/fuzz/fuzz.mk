# tests/fuzz/fuzz.mk - libFuzzer harnesses and their corpus replay (docs/RELIABILITY.md).
# Included by the top-level Makefile after its variables (LIB_SRC, BUILD, LIB, ALL_CFLAGS).
#
#   make fuzz                              build build/fuzz/fuzz_* with clang and run each for
#                                          FUZZ_SECONDS (default 60) from tests/fuzz/corpus/<h>
#   make fuzz FUZZ_TARGETS=fuzz_mesh FUZZ_SECONDS=600    one harness, ten minutes
#   make fuzz FUZZ_MERGE=1                 then merge inputs that add coverage into the corpus
#   make fuzz-replay                       replay the corpus with $(CC) (part of make check)
#   make fuzz-seeds                        regenerate the seeds (make_seeds.c, make_text_seeds.sh)
#   make fuzz-coverage                     line coverage of the corpus (llvm-cov), per harness
#
# make fuzz needs clang with libFuzzer and libomp (Debian: clang libclang-rt-14-dev libomp-dev);
# make check does not: the replay drivers are built with the normal toolchain.

FUZZ_HARNESS := fuzz_scenario fuzz_config fuzz_mesh fuzz_nifti
FUZZ_TARGETS ?= $(FUZZ_HARNESS)
FUZZ_SECONDS ?= 60
FUZZ_MERGE   ?= 0
# FUZZ_FORK=1: libFuzzer's fork mode, which keeps fuzzing after a crash, leak, OOM or timeout
# and saves each one; for long campaigns on a harness that meets known upstream crashes
# (fuzz_mesh: libhdf5). The run still fails when anything was saved: triage every artifact.
FUZZ_FORK    ?= 0
FUZZ_CC      ?= clang
FUZZ_BUILD   ?= build/fuzz
FUZZ_CORPUS  := tests/fuzz/corpus
# scratch files of the harnesses (one small file per input): tmpfs when there is one
FUZZ_TMPDIR  ?= $(if $(wildcard /dev/shm/.),/dev/shm,/tmp)
# -timeout: an input taking longer is a hang; -rss_limit_mb: the default 2 GiB plus the
# sanitizers' own overhead, so an input that allocates a 2 GiB grid is reported, not the runtime
FUZZ_OPTS    ?= -timeout=30 -rss_limit_mb=2560 -use_value_profile=1 -print_final_stats=1
FUZZ_FORK_OPTS := $(if $(filter 1,$(FUZZ_FORK)),-fork=1 -ignore_crashes=1 -ignore_ooms=1 \
                  -ignore_timeouts=1)
# Leaks inside libhdf5 on malformed files are known upstream bugs (tests/fuzz/lsan.supp); the
# suppressions match on whole stacks, which through a library built without frame pointers
# needs the slow unwinder. Replays are few, so they always use it; make fuzz only for fuzz_mesh,
# which also lets malloc fail for impossible sizes, as glibc's does (libhdf5 asks for sizes read
# from the file, e.g. 2^57 bytes, and handles the failure; ASan would abort instead).
FUZZ_LSAN    := LSAN_OPTIONS=suppressions=$(CURDIR)/tests/fuzz/lsan.supp:print_suppressions=0
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer -g
# -Wno-pass-failed: at -O1 clang cannot honour every "omp simd" and says so; irrelevant here
FUZZ_CFLAGS   = -std=c11 -D_POSIX_C_SOURCE=200809L -fopenmp -Wall -Wextra -Wno-pass-failed \
                -Iinclude -I/usr/include/nifti $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
                -O1 $(FUZZ_SAN)

FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_LIB     := $(FUZZ_BUILD)/libablasim.a
FUZZ_BINS    := $(FUZZ_HARNESS:%=$(FUZZ_BUILD)/%)
REPLAY_BINS  := $(FUZZ_HARNESS:%=$(BUILD)/tests/fuzz/replay_%)
SEEDS_BIN    := $(BUILD)/tests/fuzz/make_seeds

.PHONY: fuzz fuzz-build fuzz-replay fuzz-seeds fuzz-need-clang fuzz-coverage

# ---- libFuzzer build: the library instrumented for coverage (fuzzer-no-link), ASan + UBSan --

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(FUZZ_BINS): $(FUZZ_BUILD)/%: $(FUZZ_BUILD)/tests/fuzz/%.o $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(LDLIBS_ALL)

fuzz-need-clang:
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz needs clang with libFuzzer and" \
	    "libomp: apt-get install clang libclang-rt-14-dev libomp-dev" >&2; exit 1; }

fuzz-build: fuzz-need-clang
	@$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%)

# New inputs go to $(FUZZ_BUILD)/corpus/<h> (the first directory); the committed corpus is
# read only unless FUZZ_MERGE=1, which adds the inputs that increase coverage (libFuzzer -merge).
# Crashes are saved as $(FUZZ_BUILD)/artifacts/<h>-crash-*, the log as $(FUZZ_BUILD)/<h>.log;
# tests/fuzz/triage.sh groups saved artifacts by cause. The text harnesses get the scenario
# dictionary and a 16 KiB input bound (without it libFuzzer takes the largest seed, the 90 KB
# tissue table, as the bound, and long inputs only slow it down).
fuzz: fuzz-build
	@fail=0; for h in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$h $(FUZZ_BUILD)/artifacts || exit 1; \
	    dict=; asan=; \
	    case $$h in fuzz_scenario|fuzz_config) dict="-dict=tests/fuzz/yaml.dict -max_len=16384";; \
	        fuzz_mesh) asan=fast_unwind_on_malloc=0:allocator_may_return_null=1;; esac; \
	    echo "fuzz: $$h for $(FUZZ_SECONDS) s (log: $(FUZZ_BUILD)/$$h.log)"; \
	    n0=$$(ls $(FUZZ_BUILD)/artifacts | grep -c "^$$h-"); \
	    ABLASIM_ROOT=$(CURDIR) TMPDIR=$(FUZZ_TMPDIR) ASAN_OPTIONS=$$asan $(FUZZ_LSAN) \
	        $(FUZZ_BUILD)/$$h $(FUZZ_OPTS) $(FUZZ_FORK_OPTS) $$dict \
	        -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$h- \
	        $(FUZZ_BUILD)/corpus/$$h $(FUZZ_CORPUS)/$$h > $(FUZZ_BUILD)/$$h.log 2>&1; \
	    rc=$$?; grep -E '^(#[0-9]+[[:space:]]+DONE|#[0-9]+: cov|stat::|==[0-9]+==|SUMMARY)' \
	        $(FUZZ_BUILD)/$$h.log | grep -vE 'stat::(peak_rss|slowest)' | tail -n 8; \
	    n1=$$(ls $(FUZZ_BUILD)/artifacts | grep -c "^$$h-"); \
	    if [ $$n1 -gt $$n0 ]; then rc=1; echo "fuzz: $$h saved $$((n1 - n0)) new artifact(s)" \
	        "in $(FUZZ_BUILD)/artifacts/ (replay one: $(FUZZ_BUILD)/$$h FILE)"; fi; \
	    if [ $$rc -ne 0 ]; then tail -n 40 $(FUZZ_BUILD)/$$h.log; \
	        echo "fuzz: $$h FAILED (see $(FUZZ_BUILD)/$$h.log)" >&2; fail=1; continue; fi; \
	    if [ "$(FUZZ_MERGE)" = 1 ]; then \
	        ABLASIM_ROOT=$(CURDIR) TMPDIR=$(FUZZ_TMPDIR) ASAN_OPTIONS=$$asan $(FUZZ_LSAN) \
	            $(FUZZ_BUILD)/$$h -merge=1 \
	            $(FUZZ_CORPUS)/$$h $(FUZZ_BUILD)/corpus/$$h > $(FUZZ_BUILD)/$$h.merge.log 2>&1 \
	            || { echo "fuzz: merge of $$h failed" >&2; fail=1; continue; }; \
	        tail -n 1 $(FUZZ_BUILD)/$$h.merge.log; \
	    fi; \
	done; exit $$fail

# ---- corpus replay with the project's compiler and flags (SANITIZE=1: ASan + UBSan) -------

$(REPLAY_BINS): $(BUILD)/tests/fuzz/replay_%: $(BUILD)/tests/fuzz/%.o \
                $(BUILD)/tests/fuzz/replay_main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $(filter %.o,$^) $(LIB) $(LDLIBS_ALL)

fuzz-replay: $(REPLAY_BINS)
	@fail=0; for h in $(FUZZ_HARNESS); do \
	    ABLASIM_ROOT=$(CURDIR) ASAN_OPTIONS=fast_unwind_on_malloc=0 $(FUZZ_LSAN) \
	        $(BUILD)/tests/fuzz/replay_$$h $(FUZZ_CORPUS)/$$h || fail=1; \
	done; exit $$fail

# ---- line coverage of a corpus (clang source-based coverage; make fuzz-coverage) ----------
# Replays FUZZ_COV_DIRS (default: the committed corpus and what make fuzz found) through
# drivers built with -fprofile-instr-generate and prints llvm-cov's per-file report for the
# code each harness is for. Failing inputs still count for coverage; their FAIL lines show.

FUZZ_COV_BUILD := build/fuzzcov
FUZZ_COV_DIRS  ?= $(FUZZ_CORPUS) $(FUZZ_BUILD)/corpus
LLVM_PROFDATA  ?= llvm-profdata
LLVM_COV       ?= llvm-cov
FUZZ_COV_FLAGS  = -std=c11 -D_POSIX_C_SOURCE=200809L -fopenmp -Wall -Wextra -Wno-pass-failed \
                  -Iinclude -I/usr/include/nifti $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
                  -O1 -g -fprofile-instr-generate -fcoverage-mapping
FUZZ_COV_LIB   := $(FUZZ_COV_BUILD)/libablasim.a
FUZZ_COV_BINS  := $(FUZZ_HARNESS:%=$(FUZZ_COV_BUILD)/replay_%)

$(FUZZ_COV_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_COV_FLAGS) -MMD -MP -c $< -o $@

$(FUZZ_COV_LIB): $(LIB_SRC:%.c=$(FUZZ_COV_BUILD)/%.o)
	$(AR) rcs $@ $^

$(FUZZ_COV_BINS): $(FUZZ_COV_BUILD)/replay_%: $(FUZZ_COV_BUILD)/tests/fuzz/%.o \
                  $(FUZZ_COV_BUILD)/tests/fuzz/replay_main.o $(FUZZ_COV_LIB)
	$(FUZZ_CC) $(FUZZ_COV_FLAGS) -o $@ $(filter %.o,$^) $(FUZZ_COV_LIB) $(LDLIBS_ALL)

fuzz-coverage: fuzz-need-clang $(FUZZ_COV_BINS)
	@for h in $(FUZZ_TARGETS); do \
	    rm -rf $(FUZZ_COV_BUILD)/prof/$$h && mkdir -p $(FUZZ_COV_BUILD)/prof/$$h || exit 1; \
	    dirs=; for d in $(FUZZ_COV_DIRS); do [ -d $$d/$$h ] && dirs="$$dirs $$d/$$h"; done; \
	    ABLASIM_ROOT=$(CURDIR) LLVM_PROFILE_FILE=$(FUZZ_COV_BUILD)/prof/$$h/%p.profraw \
	        $(FUZZ_COV_BUILD)/replay_$$h $$dirs 2>&1 | grep -v '^\*\*\|^fuzz harness'; \
	    $(LLVM_PROFDATA) merge -sparse -o $(FUZZ_COV_BUILD)/$$h.profdata \
	        $(FUZZ_COV_BUILD)/prof/$$h/*.profraw || exit 1; \
	    case $$h in fuzz_scenario) src="src/model/scenario.c src/model/tissue.c src/model/shape.c \
	            src/model/schedule.c src/driver/sim.c";; \
	        fuzz_config) src=src/model/config.c;; fuzz_mesh) src=src/formats/mesh.c;; \
	        fuzz_nifti) src=src/formats/nifti.c;; esac; \
	    $(LLVM_COV) report $(FUZZ_COV_BUILD)/replay_$$h \
	        -instr-profile=$(FUZZ_COV_BUILD)/$$h.profdata $$src | sed 's/^/  /'; \
	done

# ---- seeds ---------------------------------------------------------------------------------

$(SEEDS_BIN): $(BUILD)/tests/fuzz/make_seeds.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS_ALL)

fuzz-seeds: $(SEEDS_BIN)
	$(SEEDS_BIN) $(FUZZ_CORPUS)
	tests/fuzz/make_text_seeds.sh $(FUZZ_CORPUS)

-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_HARNESS:%=$(FUZZ_BUILD)/tests/fuzz/%.d)
-include $(LIB_SRC:%.c=$(FUZZ_COV_BUILD)/%.d) $(FUZZ_HARNESS:%=$(FUZZ_COV_BUILD)/tests/fuzz/%.d)
-include $(FUZZ_HARNESS:%=$(BUILD)/tests/fuzz/%.d) $(BUILD)/tests/fuzz/replay_main.d
