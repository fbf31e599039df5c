/* fuzz_scenario.c - libFuzzer harness for the scenario schema (scenario_load_string) and the
 * run planner (sim_create).
 *
 * Input: scenario YAML. Lines that start with "# --set " (the form the output file records
 * overrides in) are also passed as --set overrides, at most FUZZ_MAX_SETS of them; to YAML they
 * are comments. tissues_file and other relative paths resolve against <root>/configs, so the
 * real property table is loaded.
 *
 * Beyond "no crash, no leak": a scenario that loads must satisfy every range the README
 * promises (a value that slips past validation is a silent wrong number later), a failure must
 * come with a message, and sim_create must either plan a run with a sane time step or fail with
 * a message. sim_create runs only on small generated grids: its cost is the voxel count (the
 * duration costs nothing until sim_step, which is not called), and mesh files are the mesh
 * harnesses' job.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/scenario.h"
#include "ablasim/sim.h"
#include "fuzz_common.h"

/* 2^16 voxels keep an input under ~10 ms with the sanitizers on, so the fuzzer explores. */
#define FUZZ_MAX_VOXELS ((size_t)1 << 16)
#define FUZZ_MAX_SETS 4

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) abort();                                                                      \
    } while (0)

static int in(double v, double lo, double hi)
{
    return isfinite(v) && v >= lo && v <= hi;
}

/* The README's ranges ("Scenario reference" and the tissue table), for a scenario that loaded.
 * Bounds are the documented ones; an open bound is checked as > / <. */
static void check_scenario(const abl_scenario *sc)
{
    if (!sc->mesh_path)
        for (int d = 0; d < 3; d++) {
            CHECK(sc->dims[d] >= 1 && sc->dims[d] <= 4096);
            CHECK(in(sc->spacing_m[d], 0, 0.1) && sc->spacing_m[d] > 0);
        }
    if (sc->origin_given)
        for (int d = 0; d < 3; d++)
            CHECK(in(sc->origin_m[d], -10.0, 10.0));
    CHECK(in(sc->T_arterial_C, -200, 200) && in(sc->T_initial_C, -200, 200));
    CHECK(in(sc->arrhenius_min_C, 20, 100));
    for (int f = 0; f < 6; f++) {
        CHECK(in(sc->bc[f].T_C, -200, 200));
        if (sc->bc[f].type == BC_CONVECTIVE)
            CHECK(in(sc->bc[f].h_W_m2K, 0, 1e6) && sc->bc[f].h_W_m2K > 0);
    }
    CHECK(in(sc->duration_s, 0, 1e6) && sc->duration_s > 0);
    CHECK(sc->dt_s == 0 || (in(sc->dt_s, 0, 1e4) && sc->dt_s > 0));
    CHECK(in(sc->dt_safety, 0, 1) && sc->dt_safety > 0);
    CHECK(in(sc->solver_tol, 1e-14, 1e-2));
    CHECK(sc->max_iterations >= 1 && sc->max_iterations <= 100000);
    CHECK(sc->rannacher_steps >= 0 && sc->rannacher_steps <= 100);
    CHECK(sc->nsources >= 0 && sc->nsources <= 64);
    for (int i = 0; i < sc->nsources; i++) {
        const abl_source_cfg *s = &sc->sources[i];
        CHECK(in(s->on_s, 0, 1e7) && in(s->off_s, 0, 1e7) && s->off_s > s->on_s);
        if (s->type == SRC_MODALITY) continue; /* its keys and ranges are its own parser's */
        CHECK(s->schedule.n >= 1);
        for (int q = 0; q < s->schedule.n; q++) {
            CHECK(isfinite(s->schedule.t_s[q]) && isfinite(s->schedule.v[q]));
            if (q) CHECK(s->schedule.t_s[q] >= s->schedule.t_s[q - 1]);
            if (s->type == SRC_VOLUMETRIC)
                CHECK(in(s->schedule.v[q], 0, 1e4));
            else
                CHECK(in(s->schedule.v[q], -200, 200));
        }
    }
    CHECK(sc->n_hot >= 0 && sc->n_hot <= ABL_MAX_THRESHOLDS);
    CHECK(sc->n_cold >= 0 && sc->n_cold <= ABL_MAX_THRESHOLDS);
    for (int h = 0; h < sc->n_hot; h++)
        CHECK(isfinite(sc->hot_C[h]));
    for (int h = 0; h < sc->n_cold; h++)
        CHECK(isfinite(sc->cold_C[h]));
    CHECK(in(sc->snapshot_interval_s, 0, 1e7) && in(sc->monitor_interval_s, 0, 1e7));
    CHECK(sc->tissues.n >= 1);
    for (int t = 0; t < sc->tissues.n; t++) {
        const abl_tissue *ti = &sc->tissues.t[t];
        CHECK(in(ti->rho_kg_m3, 0.5, 5000) && in(ti->c_J_kgK, 100, 1e4));
        CHECK(in(ti->k_W_mK, 0.01, 10) && in(ti->perfusion_per_s, 0, 1));
        CHECK(in(ti->q_met_W_m3, 0, 1e5));
        CHECK(isnan(ti->k_temp_coeff_per_K) || in(ti->k_temp_coeff_per_K, -0.05, 0.05));
    }
    CHECK(sc->background_tissue >= 0 || sc->mesh_path);
    CHECK(sc->background_tissue < sc->tissues.n);
    for (int r = 0; r < sc->nregions; r++)
        CHECK(sc->regions[r].tissue >= 0 && sc->regions[r].tissue < sc->tissues.n);
    CHECK(sc->text != NULL);
}

static void check_sim(const abl_scenario *sc, const abl_sim *s)
{
    CHECK(s->grid.n >= 1 && s->nmat >= 1 && s->nmat <= ABL_MAX_MATERIALS);
    CHECK(isfinite(s->dt_s) && s->dt_s > 0 && s->dt_s <= sc->duration_s * (1 + 1e-12));
    if (sc->scheme == SCHEME_EXPLICIT) CHECK(s->dt_s <= s->dt_stable_s * (1 + 1e-12));
    for (size_t c = 0; c < s->grid.n; c++)
        CHECK(s->material[c] < s->nmat);
}

static int small_enough(const abl_scenario *sc)
{
    if (sc->mesh_path) return 0;
    size_t n = 1;
    for (int d = 0; d < 3; d++) {
        n *= (size_t)sc->dims[d];
        if (n > FUZZ_MAX_VOXELS) return 0;
    }
    return 1;
}

/* A file the scenario names is read while loading (tissues_file). Device files could block
 * (/dev/stdin, /dev/tty) or never end, which is the user's doing, not a bug: stdin is closed
 * off once, and inputs naming /dev, /proc or /sys are skipped (YAML escapes could still spell
 * such a name; libFuzzer's -timeout would then report it). */
static int names_device(const char *text)
{
    return strstr(text, "dev/") || strstr(text, "proc/") || strstr(text, "sys/");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        init = 1;
        if (!freopen("/dev/null", "r", stdin)) abort();
        omp_set_num_threads(1); /* 2 shared cores; the threaded paths are tested in make check */
    }
    char *text = fz_strndup(data, size);
    if (names_device(text)) {
        free(text);
        return 0;
    }
    const char *sets[FUZZ_MAX_SETS];
    int nsets = 0;
    static const char marker[] = "# --set ";
    char *copy = fz_strndup(data, size);
    for (char *line = copy; line && nsets < FUZZ_MAX_SETS;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (!strncmp(line, marker, sizeof marker - 1)) sets[nsets++] = line + sizeof marker - 1;
        line = nl ? nl + 1 : NULL;
    }

    char base[PATH_MAX + 16];
    snprintf(base, sizeof base, "%s/configs", fz_root());
    fz_capture_begin();
    int fd0 = fz_lowest_free_fd();
    static abl_scenario sentinel;
    abl_scenario *sc = &sentinel; /* a failed load must set it to NULL */
    abl_error err = {0};
    abl_status st = scenario_load_string(text, "fuzz.yaml", base, sets, nsets, &sc, &err);
    if (st != ABL_OK) {
        CHECK(sc == NULL && err.msg[0] != '\0');
    } else {
        CHECK(sc != NULL);
        check_scenario(sc);
        if (small_enough(sc)) {
            abl_sim *sim = NULL;
            abl_error serr = {0};
            if (sim_create(sc, &sim, &serr) == ABL_OK) {
                CHECK(sim != NULL);
                check_sim(sc, sim);
                sim_destroy(sim);
            } else {
                CHECK(sim == NULL && serr.msg[0] != '\0');
            }
        }
        scenario_free(sc);
    }
    CHECK(fz_lowest_free_fd() == fd0); /* no file left open */
    fz_capture_end();
    free(copy);
    free(text);
    return 0;
}
