/* test_resume.c - stopping a run and resuming it from its checkpoint.
 *
 * Matrix: every source type (volumetric, fixed temperature, RFA straight / cooled / expandable /
 * 3-needle cluster / sequential, MWA, cryo) x {explicit, Crank-Nicolson} x a stop early, mid-way
 * and late. A run is stopped through abl_run_opts.stop (set from the progress callback, as the
 * CLI's signal handler does), rebuilt from the checkpoint alone (checkpoint_load_scenario,
 * sim_create, checkpoint_restore) and run to the end; every evolving result must equal the
 * uninterrupted run's bit for bit (memcmp, no tolerance: the same kernels on the same state). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/checkpoint.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------------------------- */

typedef struct {
    long stop_at;                 /* set the flag once the run has reached this step */
    volatile sig_atomic_t flag;
} stopper;

static void stop_when(const abl_progress *p, void *user)
{
    stopper *s = user;
    if (p->step >= s->stop_at) s->flag = 1;
}

/* Scenario: a liver cube of N^3 voxels of 1.5 mm (centred on 0), one source (YAML list entry),
 * the given scheme; 50 and 60 C hot and -20 C cold thresholds (the time maps), energy
 * bookkeeping on. */
static abl_scenario *resume_scenario(int N, double duration_s, const char *scheme,
                                     const char *physics, const char *source)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "name: resume_case\n"
             "tissues_file: tissues.yaml\n"
             "grid: {dims: [%d, %d, %d], spacing_mm: [1.5, 1.5, 1.5], background: liver}\n"
             "physics: {arterial_temperature_C: 37%s}\n"
             "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
             "time: {duration_s: %g, scheme: %s%s}\n"
             "sources:\n%s"
             "output: {snapshot_interval_s: 20, hot_thresholds_C: [50, 60], "
             "cold_thresholds_C: [-20], energy_balance: true}\n",
             N, N, N, physics ? physics : "", duration_s, scheme,
             strcmp(scheme, "explicit") ? ", dt_s: 2" : "", source);
    return tu_scenario(yaml, NULL, 0);
}

/* Run s to the end without output; false (and a printed message) on failure. */
static bool run_to_end(abl_sim *s, long resume_snapshots)
{
    abl_run_opts o = {.no_output = true, .resume_snapshots = resume_snapshots};
    abl_error err = {0};
    abl_status st = sim_run(s, &o, &err);
    if (st) printf("\n  sim_run: %s", err.msg);
    return st == ABL_OK;
}

/* First difference between two runs' results, or NULL when bitwise identical. */
static const char *first_difference(const abl_sim *a, const abl_sim *b)
{
    const size_t n = a->grid.n, d = n * sizeof(double), f = n * sizeof(float);
    if (a->step != b->step) return "step count";
    if (memcmp(a->T, b->T, d)) return "T";
    if (memcmp(a->T_max, b->T_max, d)) return "T_max";
    if (memcmp(a->T_min, b->T_min, d)) return "T_min";
    if (memcmp(a->omega, b->omega, d)) return "damage omega";
    if (memcmp(a->cem43_min, b->cem43_min, d)) return "cem43";
    for (int h = 0; h < a->sc->n_hot; h++)
        if (memcmp(a->t_hot[h], b->t_hot[h], f)) return "time above a hot threshold";
    for (int h = 0; h < a->sc->n_cold; h++)
        if (memcmp(a->t_cold[h], b->t_cold[h], f)) return "time below a cold threshold";
    if ((a->freeze_cycles != NULL) != (b->freeze_cycles != NULL) ||
        (a->freeze_cycles && memcmp(a->freeze_cycles, b->freeze_cycles, f)))
        return "freeze cycles";
    if ((a->applicator != NULL) != (b->applicator != NULL) ||
        (a->applicator && memcmp(a->applicator, b->applicator, n)))
        return "applicator mask";
    if (memcmp(&a->energy, &b->energy, sizeof a->energy)) return "energy bookkeeping";
    if (a->n_cg != b->n_cg || memcmp(a->cg_iters, b->cg_iters, a->n_cg * sizeof(int)) ||
        memcmp(a->cg_resid, b->cg_resid, a->n_cg * sizeof(double)))
        return "CG log";
    for (int i = 0; i < a->nsources; i++) {
        if (!a->sources[i]->ops->series) continue;
        abl_source_series sa, sb;
        a->sources[i]->ops->series(a->sources[i], &sa);
        b->sources[i]->ops->series(b->sources[i], &sb);
        if (sa.nrow != sb.nrow || sa.ncol != sb.ncol ||
            memcmp(sa.rows, sb.rows, sa.nrow * (size_t)sa.ncol * sizeof(double)))
            return "source series";
    }
    return NULL;
}

/* Stop a fresh run of sc at (the first chunk boundary at or after) step stop_at through
 * opts.stop, writing ckpt; returns the step it stopped at (-1 on failure). */
static long stop_run(const abl_scenario *sc, long stop_at, const char *ckpt)
{
    abl_sim *b = NULL;
    abl_error err = {0};
    if (sim_create(sc, &b, &err)) {
        printf("\n  sim_create: %s", err.msg);
        return -1;
    }
    stopper sp = {stop_at, 0};
    abl_run_opts o = {.no_output = true,
                      .progress = stop_when,
                      .progress_user = &sp,
                      .progress_interval_s = 0.0,
                      .checkpoint_path = ckpt,
                      .stop = &sp.flag,
                      .resume_snapshots = -1};
    abl_status st = sim_run(b, &o, &err);
    long at = st == ABL_ESTOPPED ? b->step : -1;
    if (st != ABL_ESTOPPED) printf("\n  stop: expected ABL_ESTOPPED, got %d: %s", (int)st, err.msg);
    sim_destroy(b);
    return at;
}

/* Resume from ckpt the way 'ablasim resume' does; NULL (message printed) on failure. */
static abl_sim *resume_from(const char *ckpt, abl_scenario **sc, abl_error *err)
{
    abl_checkpoint_info info;
    abl_sim *s = NULL;
    *sc = NULL;
    abl_status st = checkpoint_load_scenario(ckpt, sc, &info, err);
    if (st) return NULL;
    if ((st = sim_create(*sc, &s, err)) || (st = checkpoint_restore(ckpt, s, err))) {
        sim_destroy(s);
        scenario_free(*sc);
        *sc = NULL;
        s = NULL;
    }
    checkpoint_info_free(&info);
    return s;
}

/* ---- the matrix ---------------------------------------------------------------------------- */

typedef struct {
    const char *tag;
    int N;
    double duration_s;
    const char *physics; /* extra physics keys (", key: value") */
    const char *source;
} resume_case;

static const resume_case cases[] = {
    {"volumetric", 16, 60, NULL,
     "  - {name: heat, type: volumetric, power_W: 1.5, off_s: 40,\n"
     "     shape: {type: sphere, center_mm: [0, 0, 0], radius_mm: 3}}\n"},
    {"fixed_temperature", 16, 60, NULL,
     "  - name: tip\n"
     "    type: fixed_temperature\n"
     "    off_s: 45\n"
     "    shape: {type: cylinder, start_mm: [0, 0, -5], end_mm: [0, 0, 5], radius_mm: 1.2}\n"
     "    schedule: [{time_s: 0, temperature_C: 37}, {time_s: 20, temperature_C: 95}]\n"},
    {"rfa_straight", 18, 60, ", perfusion_shutdown: arrhenius",
     "  - name: rfa\n"
     "    type: rfa\n"
     "    generator: {mode: temperature, setpoint_C: 90, max_power_W: 30}\n"
     "    electrodes:\n"
     "      - {tip_mm: [0, 0, -5], direction: [0, 0, 1], active_length_mm: 10}\n"},
    {"rfa_cooled", 18, 60, NULL,
     "  - name: rfa\n"
     "    type: rfa\n"
     "    generator: {mode: impedance, power_W: 40, pause_s: 5, baseline_s: 2}\n"
     "    electrodes:\n"
     "      - {tip_mm: [0, 0, -5], direction: [0, 0, 1], active_length_mm: 10,\n"
     "         coolant_temperature_C: 15}\n"},
    {"rfa_expandable", 20, 60, NULL,
     "  - name: rfa\n"
     "    type: rfa\n"
     "    generator: {mode: constant_power, power_W: 15}\n"
     "    electrodes:\n"
     "      - {type: expandable, tip_mm: [0, 0, 3], direction: [0, 0, 1], n_tines: 6,\n"
     "         deployed_diameter_mm: 14}\n"},
    {"rfa_cluster3", 20, 60, NULL,
     "  - name: rfa\n"
     "    type: rfa\n"
     "    generator: {mode: constant_power, power_W: 20}\n"
     "    electrodes:\n"
     "      - {tip_mm: [-4, 0, -5], direction: [0, 0, 1], active_length_mm: 10}\n"
     "      - {tip_mm: [2, 3.5, -5], direction: [0, 0, 1], active_length_mm: 10}\n"
     "      - {tip_mm: [2, -3.5, -5], direction: [0, 0, 1], active_length_mm: 10}\n"},
    {"rfa_sequential", 20, 60, NULL,
     "  - name: rfa\n"
     "    type: rfa\n"
     "    generator: {mode: constant_power, power_W: 15}\n"
     "    switching: sequential\n"
     "    switch_interval_s: 7\n"
     "    electrodes:\n"
     "      - {tip_mm: [-4, 0, -5], direction: [0, 0, 1], active_length_mm: 10}\n"
     "      - {tip_mm: [4, 0, -5], direction: [0, 0, 1], active_length_mm: 10}\n"},
    {"mwa", 18, 60, ", perfusion_shutdown: arrhenius",
     "  - {name: antenna, type: mwa, frequency_MHz: 2450, power_W: 15, tip_mm: [0, 0, -6],\n"
     "     direction: [0, 0, 1], cutoff_mm: 12}\n"},
    {"cryo", 16, 70, NULL,
     "  - name: cryo\n"
     "    type: cryo\n"
     "    ramp_s: 5\n"
     "    protocol:\n"
     "      - {phase: freeze, duration_s: 30, temperature_C: -150}\n"
     "      - {phase: passive_thaw, duration_s: 15}\n"
     "      - {phase: freeze, duration_s: 25, temperature_C: -150}\n"
     "    probes:\n"
     "      - {tip_mm: [0.75, 0.75, -5], direction: [0, 0, 1], active_length_mm: 8, "
     "gauge: 13}\n"},
};
#define NCASES (sizeof cases / sizeof cases[0])

static void test_matrix(void)
{
    static const char *const schemes[] = {"explicit", "crank_nicolson"};
    static const double fracs[] = {0.1, 0.5, 0.9};
    int ncase = 0, nequal = 0;
    for (size_t c = 0; c < NCASES; c++)
        for (int sch = 0; sch < 2; sch++) {
            abl_scenario *sc =
                resume_scenario(cases[c].N, cases[c].duration_s, schemes[sch], cases[c].physics,
                                cases[c].source);
            CU_ASSERT_FATAL(sc != NULL);
            abl_sim *a = tu_sim(sc);
            const long n = (long)llround(sc->duration_s / a->dt_s);
            CU_ASSERT_FATAL(run_to_end(a, -1));
            char stops[64] = "";
            for (int q = 0; q < 3; q++) {
                char ckpt[700];
                snprintf(ckpt, sizeof ckpt, "%s/matrix_%s_%s_%d.ckpt.h5", tu_tmpdir(),
                         cases[c].tag, schemes[sch], q);
                const long at = stop_run(sc, (long)llround(fracs[q] * (double)n), ckpt);
                ncase++;
                CU_ASSERT(at > 0 && at < n);
                if (!(at > 0 && at < n)) continue;
                abl_scenario *sc2 = NULL;
                abl_error err = {0};
                abl_sim *b = resume_from(ckpt, &sc2, &err);
                if (!b) printf("\n  %s %s: resume: %s", cases[c].tag, schemes[sch], err.msg);
                CU_ASSERT(b != NULL);
                if (!b) continue;
                CU_ASSERT(b->step == at);
                const char *diff = run_to_end(b, 0) ? first_difference(a, b) : "run failed";
                if (diff)
                    printf("\n  %s %s stopped at %ld/%ld: %s differs", cases[c].tag,
                           schemes[sch], at, n, diff);
                CU_ASSERT(diff == NULL);
                nequal += diff == NULL;
                snprintf(stops + strlen(stops), sizeof stops - strlen(stops), "%s%ld",
                         q ? "," : "", at);
                sim_destroy(b);
                scenario_free(sc2);
                remove(ckpt);
            }
            printf("\n  %-17s %-14s %3ld steps, stopped at %s", cases[c].tag, schemes[sch], n,
                   stops);
            sim_destroy(a);
            scenario_free(sc);
        }
    printf("\n  %d of %d stopped-and-resumed runs bitwise equal to the uninterrupted run",
           nequal, ncase);
    CU_ASSERT(ncase == (int)(NCASES * 2 * 3));
}

void register_resume_tests(void)
{
    CU_pSuite s = CU_add_suite("resume", NULL, NULL);
    CU_add_test(s, "stop/resume matrix: 9 sources x 2 schemes x 3 stops, bitwise", test_matrix);
}
