/* test_resume.c - stopping a run and resuming it from its checkpoint.
 *
 * Matrix: every source type (volumetric, fixed temperature, RFA straight / cooled / expandable /
 * 3-needle cluster / sequential, MWA uncooled / cooled with threshold perfusion, cryo) x
 * {explicit, Crank-Nicolson} x a stop early, mid-way and late. A run is stopped through abl_run_opts.stop (set from the progress callback, as the
 * CLI's signal handler does), rebuilt from the checkpoint alone (checkpoint_load_scenario,
 * sim_create, checkpoint_restore) and run to the end; every evolving result must equal the
 * uninterrupted run's bit for bit (memcmp, no tolerance: the same kernels on the same state).
 *
 * Integrity: a flipped byte inside a field, a value overwritten through the HDF5 API, a changed
 * attribute, a missing checksum, an older format or another build version are refused with a
 * message naming the checkpoint and what is wrong; so is a checkpoint whose checksums hold but
 * whose state is impossible (NaN, T outside [T_min, T_max], negative dose, time maps beyond
 * the elapsed time). Provenance: a changed tissue value (of a tissue in use), a changed or
 * missing mesh, a missing tissue table are refused naming the file and, for tissues, the
 * property; a checkpoint made in one directory resumes from another. */
#define _DEFAULT_SOURCE /* realpath */
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ablasim/checkpoint.h"
#include "ablasim/mesh.h"
#include "ablasim/version.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------------------------- */

typedef struct {
    long stop_at; /* set the flag once the run has reached this step */
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
    /* explicit runs have no CG log (NULL arrays): memcmp must not see NULL even for 0 bytes */
    if (a->n_cg != b->n_cg ||
        (a->n_cg && (memcmp(a->cg_iters, b->cg_iters, a->n_cg * sizeof(int)) ||
                     memcmp(a->cg_resid, b->cg_resid, a->n_cg * sizeof(double)))))
        return "CG log";
    for (int i = 0; i < a->nsources; i++) {
        if (!a->sources[i]->ops->series) continue;
        abl_source_series sa, sb;
        a->sources[i]->ops->series(a->sources[i], &sa);
        b->sources[i]->ops->series(b->sources[i], &sb);
        if (sa.nrow != sb.nrow || sa.ncol != sb.ncol ||
            (sa.nrow && memcmp(sa.rows, sb.rows, sa.nrow * (size_t)sa.ncol * sizeof(double))))
            return "source series";
    }
    return NULL;
}

/* Stop a fresh run of sc at (the first chunk boundary at or after) step stop_at through
 * opts.stop, writing ckpt and, when out is given, the partial result out.part; returns the step
 * it stopped at (-1 on failure). */
static long stop_run(const abl_scenario *sc, long stop_at, const char *ckpt, const char *out)
{
    abl_sim *b = NULL;
    abl_error err = {0};
    if (sim_create(sc, &b, &err)) {
        printf("\n  sim_create: %s", err.msg);
        return -1;
    }
    stopper sp = {stop_at, 0};
    abl_run_opts o = {.no_output = out == NULL,
                      .output_path = out,
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
    /* impedance switching with a longest turn of 5 s: hand-overs on the clock at 5, 10, 15 s,
     * on the rise from 19 s (explicit, 0.5 s steps), so the stops fall inside turns whose end
     * the restored turn start (clock) or baselines (rise) decide */
    {"rfa_impedance_switch", 20, 60, NULL,
     "  - name: rfa\n"
     "    type: rfa\n"
     "    generator: {mode: constant_power, power_W: 25}\n"
     "    switching: impedance\n"
     "    switch_interval_s: 5\n"
     "    electrodes:\n"
     "      - {tip_mm: [-4, 0, -3], direction: [0, 0, 1], active_length_mm: 6}\n"
     "      - {tip_mm: [2, 3.5, -3], direction: [0, 0, 1], active_length_mm: 6}\n"
     "      - {tip_mm: [2, -3.5, -3], direction: [0, 0, 1], active_length_mm: 6}\n"},
    {"mwa", 18, 60, ", perfusion_shutdown: arrhenius",
     "  - {name: antenna, type: mwa, frequency_MHz: 2450, power_W: 15, tip_mm: [0, 0, -6],\n"
     "     direction: [0, 0, 1], cutoff_mm: 12}\n"},
    /* reaches 88 C (620 voxels past 60 C in the uninterrupted run): the threshold acts */
    {"mwa_cooled", 18, 60, ", perfusion_shutdown: threshold",
     "  - {name: antenna, type: mwa, frequency_MHz: 2450, power_W: 25, tip_mm: [0, 0, -6],\n"
     "     direction: [0, 0, 1], cutoff_mm: 12, coolant_temperature_C: 20}\n"},
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
    static const double fracs[] = {0.1, 0.5, 0.8}; /* the last stop a chunk (8 explicit steps) before the end */
    int ncase = 0, nequal = 0;
    for (size_t c = 0; c < NCASES; c++)
        for (int sch = 0; sch < 2; sch++) {
            abl_scenario *sc = resume_scenario(cases[c].N, cases[c].duration_s, schemes[sch],
                                               cases[c].physics, cases[c].source);
            CU_ASSERT_FATAL(sc != NULL);
            abl_sim *a = tu_sim(sc);
            const long n = (long)llround(sc->duration_s / a->dt_s);
            CU_ASSERT_FATAL(run_to_end(a, -1));
            char stops[64] = "";
            for (int q = 0; q < 3; q++) {
                char ckpt[700];
                snprintf(ckpt, sizeof ckpt, "%s/matrix_%s_%s_%d.ckpt.h5", tu_tmpdir(), cases[c].tag,
                         schemes[sch], q);
                /* at most n - 9: the run loop honours a stop request at chunk ends (8
                 * explicit steps), so a later request would meet the end of the run first */
                long want = (long)llround(fracs[q] * (double)n);
                if (want > n - 9) want = n - 9;
                const long at = stop_run(sc, want, ckpt, NULL);
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
                    printf("\n  %s %s stopped at %ld/%ld: %s differs", cases[c].tag, schemes[sch],
                           at, n, diff);
                CU_ASSERT(diff == NULL);
                nequal += diff == NULL;
                snprintf(stops + strlen(stops), sizeof stops - strlen(stops), "%s%ld", q ? "," : "",
                         at);
                sim_destroy(b);
                scenario_free(sc2);
                remove(ckpt);
            }
            printf("\n  %-17s %-14s %3ld steps, stopped at %s", cases[c].tag, schemes[sch], n,
                   stops);
            sim_destroy(a);
            scenario_free(sc);
        }
    printf("\n  %d of %d stopped-and-resumed runs bitwise equal to the uninterrupted run", nequal,
           ncase);
    CU_ASSERT(ncase == (int)(NCASES * 2 * 3));
}

/* ---- integrity ------------------------------------------------------------------------------ */

/* A small run checkpointed at step 10 of 20 (explicit, volumetric heat). */
static const char *small_yaml =
    "name: small\n"
    "tissues_file: tissues.yaml\n"
    "grid: {dims: [12, 12, 12], spacing_mm: [1.5, 1.5, 1.5], background: liver}\n"
    "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
    "time: {duration_s: 30}\n"
    "sources:\n"
    "  - {name: heat, type: volumetric, power_W: 2,\n"
    "     shape: {type: sphere, center_mm: [0, 0, 0], radius_mm: 3}}\n"
    "output: {hot_thresholds_C: [45]}\n";

/* sc stepped `steps` steps (after `tweak`, if any, has edited the state), checkpointed to path. */
static void write_checkpoint(const abl_scenario *sc, long steps, const char *path,
                             void (*tweak)(abl_sim *))
{
    abl_sim *s = NULL;
    abl_error err = {0};
    CU_ASSERT_FATAL(sim_create(sc, &s, &err) == ABL_OK);
    CU_ASSERT_FATAL(sim_step(s, steps, &err) == ABL_OK);
    if (tweak) tweak(s);
    const abl_sim_view v = sim_view(s);
    abl_status st = checkpoint_write(path, &v, "small.h5", 0, NULL, &err);
    if (st) printf("\n  checkpoint_write: %s", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    sim_destroy(s);
}

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    CU_ASSERT_FATAL(a && b);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        CU_ASSERT_FATAL(fwrite(buf, 1, n, b) == n);
    fclose(a);
    CU_ASSERT_FATAL(fclose(b) == 0);
}

/* Resume ckpt the way 'ablasim resume' does; it must fail with status want and a message
 * holding every fragment (NULL-terminated list). Prints the message. */
static void expect_refused(const char *ckpt, abl_status want, const char *const *frag)
{
    abl_scenario *sc = NULL;
    abl_error err = {0};
    abl_sim *s = resume_from(ckpt, &sc, &err);
    CU_ASSERT(s == NULL);
    if (s) {
        sim_destroy(s);
        scenario_free(sc);
        return;
    }
    printf("\n  refused: %s", err.msg);
    CU_ASSERT(err.status == want);
    for (const char *const *f = frag; *f; f++) {
        if (!strstr(err.msg, *f)) printf("\n  missing '%s'", *f);
        CU_ASSERT(strstr(err.msg, *f) != NULL);
    }
}

/* Resume ckpt and run it to the end: must succeed. */
static void expect_resumes(const char *ckpt)
{
    abl_scenario *sc = NULL;
    abl_error err = {0};
    abl_sim *s = resume_from(ckpt, &sc, &err);
    if (!s) printf("\n  resume: %s", err.msg);
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT(run_to_end(s, 0));
    sim_destroy(s);
    scenario_free(sc);
}

/* Edit a checkpoint through the HDF5 API (checksums untouched): one double of a dataset. */
static void poke_double(const char *path, const char *dset, hsize_t at, double v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    hid_t fs = H5Dget_space(d);
    hsize_t one = 1;
    hid_t ms = H5Screate_simple(1, &one, NULL);
    CU_ASSERT_FATAL(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &at, NULL, &one, NULL) >= 0);
    CU_ASSERT_FATAL(H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, &v) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    CU_ASSERT_FATAL(H5Fclose(f) >= 0);
}

static void poke_attr(const char *path, const char *obj, const char *name, hid_t type,
                      const void *v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    hid_t a = H5Aopen(o, name, H5P_DEFAULT);
    CU_ASSERT_FATAL(a >= 0 && H5Awrite(a, type, v) >= 0);
    H5Aclose(a);
    H5Oclose(o);
    CU_ASSERT_FATAL(H5Fclose(f) >= 0);
}

static void test_damage(void)
{
    abl_scenario *sc = tu_scenario(small_yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    char good[700], bad[720];
    snprintf(good, sizeof good, "%s/small.ckpt.h5", tu_tmpdir());
    snprintf(bad, sizeof bad, "%s/small_bad.ckpt.h5", tu_tmpdir());
    write_checkpoint(sc, 10, good, NULL);
    expect_resumes(good);

    /* one byte flipped inside the raw data of /state/T_C (contiguous: H5Dget_offset is the
     * file position of its first byte); voxel 100, byte 3 of its double */
    copy_file(good, bad);
    hid_t f = H5Fopen(bad, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "/state/T_C", H5P_DEFAULT);
    haddr_t off = H5Dget_offset(d);
    H5Dclose(d);
    H5Fclose(f);
    CU_ASSERT_FATAL(off != HADDR_UNDEF);
    FILE *fp = fopen(bad, "r+b");
    CU_ASSERT_FATAL(fp != NULL);
    CU_ASSERT_FATAL(fseek(fp, (long)off + 100 * 8 + 3, SEEK_SET) == 0);
    int byte = fgetc(fp);
    CU_ASSERT_FATAL(fseek(fp, (long)off + 100 * 8 + 3, SEEK_SET) == 0);
    fputc(byte ^ 0x04, fp);
    fclose(fp);
    const char *flip[] = {bad, "checkpoint damaged: /state/T_C checksum mismatch",
                          "cannot be resumed", NULL};
    expect_refused(bad, ABL_EINVAL, flip);

    /* values overwritten through the HDF5 API, checksum left alone */
    copy_file(good, bad);
    poke_double(bad, "/state/damage_omega", 7, 1.7e308);
    const char *big[] = {"checkpoint damaged: /state/damage_omega checksum mismatch", NULL};
    expect_refused(bad, ABL_EINVAL, big);
    copy_file(good, bad);
    poke_double(bad, "/state/T_max_C", 0, NAN);
    const char *nan[] = {"checkpoint damaged: /state/T_max_C checksum mismatch", NULL};
    expect_refused(bad, ABL_EINVAL, nan);

    /* an attribute changed (the step count) */
    copy_file(good, bad);
    long long step = 3;
    poke_attr(bad, "/checkpoint", "step", H5T_NATIVE_LLONG, &step);
    const char *attr[] = {"checkpoint damaged: the attributes of /checkpoint", NULL};
    expect_refused(bad, ABL_EINVAL, attr);

    /* a dataset without its checksum */
    copy_file(good, bad);
    f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    d = H5Dopen2(f, "/state/T_min_C", H5P_DEFAULT);
    CU_ASSERT(H5Adelete(d, "checksum_u64") >= 0);
    H5Dclose(d);
    H5Fclose(f);
    const char *nosum[] = {"checkpoint damaged: /state/T_min_C has no checksum", NULL};
    expect_refused(bad, ABL_EINVAL, nosum);

    /* an older format, another build */
    copy_file(good, bad);
    int one = 1;
    poke_attr(bad, "/checkpoint", "format", H5T_NATIVE_INT, &one);
    const char *old[] = {"written by an older ablasim (checkpoint format 1", "re-run", NULL};
    expect_refused(bad, ABL_EINVAL, old);
    copy_file(good, bad);
    hid_t vs = H5Tcopy(H5T_C_S1);
    H5Tset_size(vs, H5T_VARIABLE);
    const char *ver = "0.0.1-other";
    poke_attr(bad, "/checkpoint", "ablasim_version", vs, &ver);
    H5Tclose(vs);
    const char *other[] = {"written by ablasim 0.0.1-other, this is ablasim " ABLASIM_VERSION,
                           NULL};
    expect_refused(bad, ABL_EINVAL, other);
    remove(bad);
    remove(good);
    scenario_free(sc);
}

/* State edits made before checkpoint_write: the writer checksums them, the range check must
 * refuse them. Voxel 5 of the 12^3 grid is (i 5, j 0, k 0). */
static void tweak_nan(abl_sim *s)
{
    s->T[5] = NAN;
}
static void tweak_above_max(abl_sim *s)
{
    s->T[5] = s->T_max[5] + 1.0;
}
static void tweak_dose(abl_sim *s)
{
    s->cem43_min[5] = -1.0;
}
static void tweak_time_map(abl_sim *s)
{
    s->t_hot[0][5] = (float)(s->t_s + 10.0);
}

static void test_invalid_state(void)
{
    abl_scenario *sc = tu_scenario(small_yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    char path[700];
    snprintf(path, sizeof path, "%s/state.ckpt.h5", tu_tmpdir());
    void (*tweak[4])(abl_sim *) = {tweak_nan, tweak_above_max, tweak_dose, tweak_time_map};
    const char *field[4] = {"T_C at voxel 5 (i 5, j 0, k 0) is nan",
                            "T_C at voxel 5 (i 5, j 0, k 0)", "cem43_min at voxel 5",
                            "t_hot_0_s at voxel 5"};
    const char *allowed[4] = {"finite, -273.15..10000 C", "<= T_C <= T_max_C", "finite, >= 0",
                              "(the time elapsed)"};
    for (int i = 0; i < 4; i++) {
        write_checkpoint(sc, 10, path, tweak[i]);
        const char *frag[] = {path, "checkpoint state invalid", field[i], allowed[i], NULL};
        expect_refused(path, ABL_EINVAL, frag);
    }
    remove(path);
    scenario_free(sc);
}

/* A checkpoint restored (checkpoint_restore, the API the CLI's resume calls after loading the
 * checkpoint's own scenario) into a sim built from a scenario that does not match it: another
 * time step (what a changed step rule of another build gives) and a run too short to reach the
 * checkpoint's time. Both refused with ABL_EINVAL naming the file and both values, and the sim
 * left as created (step 0, the initial field): nothing of the checkpoint half-applied. */
static void test_scenario_mismatch(void)
{
    abl_scenario *sc = tu_scenario(small_yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    char path[700];
    snprintf(path, sizeof path, "%s/mismatch.ckpt.h5", tu_tmpdir());
    write_checkpoint(sc, 10, path, NULL);
    abl_sim *ref = NULL;
    abl_error err = {0};
    CU_ASSERT_FATAL(sim_create(sc, &ref, &err) == ABL_OK);
    const double dt = ref->dt_s, t_ck = 10 * dt;
    char yaml[1024], dts[64], frag_dt[160], frag_t[160];
    const char *tail = strstr(small_yaml, "time: {duration_s: 30}");
    CU_ASSERT_FATAL(tail != NULL);
    for (int c = 0; c < 2; c++) {
        /* c 0: the same run at half the step; c 1: a run that ends before the checkpoint */
        if (c == 0)
            snprintf(dts, sizeof dts, "time: {duration_s: 30, dt_s: %.17g}", 0.5 * dt);
        else
            snprintf(dts, sizeof dts, "time: {duration_s: %.17g}", 0.5 * t_ck);
        snprintf(yaml, sizeof yaml, "%.*s%s%s", (int)(tail - small_yaml), small_yaml, dts,
                 tail + strlen("time: {duration_s: 30}"));
        abl_scenario *sc2 = tu_scenario(yaml, NULL, 0);
        CU_ASSERT_FATAL(sc2 != NULL);
        abl_sim *s = NULL;
        CU_ASSERT_FATAL(sim_create(sc2, &s, &err) == ABL_OK);
        abl_status st = checkpoint_restore(path, s, &err);
        printf("\n  refused: %s", err.msg);
        CU_ASSERT(st == ABL_EINVAL);
        CU_ASSERT(strstr(err.msg, path) != NULL);
        if (c == 0) {
            snprintf(frag_dt, sizeof frag_dt, "time step (%.17g s) differs from the scenario's as "
                                              "loaded now (%.17g s)", dt, 0.5 * dt);
            CU_ASSERT(strstr(err.msg, frag_dt) != NULL);
            CU_ASSERT(strstr(err.msg, "ablasim version") != NULL);
        } else {
            snprintf(frag_t, sizeof frag_t, "is not a time this run reaches (breakpoints of the "
                                            "scenario, within %g s)", 0.5 * t_ck);
            CU_ASSERT(strstr(err.msg, frag_t) != NULL);
        }
        CU_ASSERT(s->step == 0 && s->t_s == 0.0);
        CU_ASSERT(memcmp(s->T, ref->T, s->grid.n * sizeof *s->T) == 0);
        sim_destroy(s);
        scenario_free(sc2);
    }
    sim_destroy(ref);
    remove(path);
    scenario_free(sc);
}

/* ---- provenance ----------------------------------------------------------------------------- */

/* Text of a file (malloc'ed). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    CU_ASSERT_FATAL(f != NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *t = malloc((size_t)n + 1);
    CU_ASSERT_FATAL(t && fread(t, 1, (size_t)n, f) == (size_t)n);
    t[n] = 0;
    fclose(f);
    return t;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f && fputs(text, f) >= 0);
    CU_ASSERT_FATAL(fclose(f) == 0);
}

/* In text, the first `key` after the line `block`: replace its value (up to the blank or
 * comment after it) with `value`. */
static void set_tissue_value(char *text, size_t cap, const char *block, const char *key,
                             const char *value)
{
    char *b = strstr(text, block);
    CU_ASSERT_FATAL(b != NULL);
    char *k = strstr(b, key);
    CU_ASSERT_FATAL(k != NULL);
    char *v = k + strlen(key);
    char *end = v + strcspn(v, " #\n");
    size_t tail = strlen(end) + 1;
    CU_ASSERT_FATAL(strlen(text) + strlen(value) < cap);
    memmove(v + strlen(value), end, tail);
    memcpy(v, value, strlen(value));
}

/* A directory under the scratch one holding a copy of the tissue table and a 12^3 mesh (liver
 * with a tumour cube). */
static void make_inputs(const char *dir)
{
    mkdir(dir, 0700);
    char src[700], dst[700];
    snprintf(src, sizeof src, "%s/configs/tissues.yaml", tu_root());
    snprintf(dst, sizeof dst, "%s/tissues.yaml", dir);
    copy_file(src, dst);
    abl_mesh m = {{12, 12, 12}, {1.5, 1.5, 1.5}, {0, 0, 0}, calloc(12 * 12 * 12, 1), NULL};
    CU_ASSERT_FATAL(m.labels != NULL);
    for (int k = 4; k < 8; k++)
        for (int j = 4; j < 8; j++)
            for (int i = 4; i < 8; i++)
                m.labels[(k * 12 + j) * 12 + i] = 1;
    snprintf(dst, sizeof dst, "%s/m.h5", dir);
    abl_error err = {0};
    CU_ASSERT_FATAL(mesh_write(dst, &m, &err) == ABL_OK);
    free(m.labels);
}

static const char *mesh_yaml = "name: prov\n"
                               "tissues_file: tissues.yaml\n"
                               "grid: {mesh: m.h5, labels: {0: liver, 1: tumour}}\n"
                               "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
                               "time: {duration_s: 30}\n"
                               "sources:\n"
                               "  - {name: heat, type: volumetric, power_W: 2,\n"
                               "     shape: {type: sphere, center_mm: [8, 8, 8], radius_mm: 3}}\n";

/* The mesh scenario with its inputs in dir, checkpointed at step 10 to ckpt. */
static void mesh_checkpoint(const char *dir, const char *ckpt)
{
    abl_scenario *sc = NULL;
    abl_error err = {0};
    abl_status st = scenario_load_string(mesh_yaml, "prov.yaml", dir, NULL, 0, &sc, &err);
    if (st) printf("\n  %s", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    write_checkpoint(sc, 10, ckpt, NULL);
    scenario_free(sc);
}

static void test_provenance(void)
{
    char dir[700], ckpt[720], tissues[PATH_MAX + 32], mesh[PATH_MAX + 32], moved[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/prov", tu_tmpdir());
    make_inputs(dir);
    char rdir[PATH_MAX];
    CU_ASSERT_FATAL(realpath(dir, rdir) != NULL);
    snprintf(ckpt, sizeof ckpt, "%s/prov.ckpt.h5", dir);
    snprintf(tissues, sizeof tissues, "%s/tissues.yaml", rdir);
    snprintf(mesh, sizeof mesh, "%s/m.h5", rdir);
    snprintf(moved, sizeof moved, "%s/moved", rdir);
    char *orig = slurp(tissues);
    const size_t cap = strlen(orig) + 64;
    char *text = malloc(cap);
    CU_ASSERT_FATAL(text != NULL);

    /* a tissue the run does not use may change; one it uses may not */
    mesh_checkpoint(dir, ckpt);
    strcpy(text, orig);
    set_tissue_value(text, cap, "\n  fat:\n", "thermal_conductivity_W_per_mK: ", "0.25");
    spit(tissues, text);
    expect_resumes(ckpt);
    strcpy(text, orig);
    set_tissue_value(text, cap, "\n  liver:\n", "thermal_conductivity_W_per_mK: ", "0.6");
    spit(tissues, text);
    const char *tis[] = {ckpt, "tissue 'liver': k_W_mK is 0.6 now, 0.5191 when", tissues,
                         "changed since the checkpoint", NULL};
    expect_refused(ckpt, ABL_EINVAL, tis);
    spit(tissues, orig);
    expect_resumes(ckpt);

    /* the mesh: one voxel relabelled (same size, same tissues in use) */
    abl_mesh m;
    abl_error err = {0};
    CU_ASSERT_FATAL(mesh_read(mesh, &m, &err) == ABL_OK);
    m.labels[(5 * 12 + 5) * 12 + 3] = 1;
    CU_ASSERT_FATAL(mesh_write(mesh, &m, &err) == ABL_OK);
    const char *msh[] = {ckpt, "the mesh file", "m.h5 changed since the checkpoint", NULL};
    expect_refused(ckpt, ABL_EINVAL, msh);
    m.labels[(5 * 12 + 5) * 12 + 3] = 0;
    CU_ASSERT_FATAL(mesh_write(mesh, &m, &err) == ABL_OK);
    expect_resumes(ckpt);
    /* the same labels moved 5 mm (the electrode now in other tissue; it resumed, exit 0,
     * before session 23's adversarial review) */
    m.origin_mm[0] += 5.0;
    CU_ASSERT_FATAL(mesh_write(mesh, &m, &err) == ABL_OK);
    const char *geo[] = {ckpt, "the grid's spacing or origin differs from the checkpoint's",
                         NULL};
    expect_refused(ckpt, ABL_EINVAL, geo);
    m.origin_mm[0] -= 5.0;
    CU_ASSERT_FATAL(mesh_write(mesh, &m, &err) == ABL_OK);
    mesh_free(&m);
    expect_resumes(ckpt);

    /* inputs gone: the stored absolute path is named */
    CU_ASSERT_FATAL(rename(mesh, moved) == 0);
    const char *nomesh[] = {"the mesh file the checkpoint was made from", mesh,
                            "does not exist any more", NULL};
    expect_refused(ckpt, ABL_EIO, nomesh);
    CU_ASSERT_FATAL(rename(moved, mesh) == 0);
    CU_ASSERT_FATAL(rename(tissues, moved) == 0);
    const char *notis[] = {"the tissue table the checkpoint was made from", tissues,
                           "does not exist any more", NULL};
    expect_refused(ckpt, ABL_EIO, notis);
    CU_ASSERT_FATAL(rename(moved, tissues) == 0);
    expect_resumes(ckpt);
    free(orig);
    free(text);
}

/* A checkpoint made with relative paths (scenario base directory ".", output "out_rel.h5")
 * in one working directory resumes from another: the stored paths are absolute, and the
 * resumed run ends bitwise equal to an uninterrupted one. */
static void test_other_cwd(void)
{
    char dir[700], ckpt[PATH_MAX + 32], here[PATH_MAX], rdir[PATH_MAX], want[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/cwd", tu_tmpdir());
    make_inputs(dir);
    CU_ASSERT_FATAL(realpath(dir, rdir) != NULL);
    snprintf(ckpt, sizeof ckpt, "%s/rel.ckpt.h5", rdir);
    snprintf(want, sizeof want, "%s/out_rel.h5", rdir);
    CU_ASSERT_FATAL(getcwd(here, sizeof here) != NULL);
    CU_ASSERT_FATAL(chdir(dir) == 0);
    abl_scenario *sc = NULL;
    abl_sim *a = NULL, *b = NULL;
    abl_error err = {0};
    abl_status st = scenario_load_string(mesh_yaml, "prov.yaml", ".", NULL, 0, &sc, &err);
    if (st == ABL_OK) st = sim_create(sc, &a, &err);
    if (st == ABL_OK) st = sim_create(sc, &b, &err);
    if (st == ABL_OK) st = sim_step(b, 10, &err);
    if (st == ABL_OK) {
        const abl_sim_view v = sim_view(b);
        st = checkpoint_write(ckpt, &v, "out_rel.h5", 0, NULL, &err);
    }
    sim_destroy(b);
    b = NULL;
    /* elsewhere: the filesystem root */
    CU_ASSERT_FATAL(chdir("/") == 0);
    abl_scenario *sc2 = NULL;
    abl_checkpoint_info info = {0};
    if (st == ABL_OK) st = checkpoint_load_scenario(ckpt, &sc2, &info, &err);
    if (st == ABL_OK) st = sim_create(sc2, &b, &err);
    if (st == ABL_OK) st = checkpoint_restore(ckpt, b, &err);
    CU_ASSERT_FATAL(chdir(here) == 0);
    if (st) printf("\n  %s", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    printf("\n  resumed from /: output %s", info.output_path);
    CU_ASSERT_STRING_EQUAL(info.output_path, want);
    CU_ASSERT(run_to_end(a, -1));
    CU_ASSERT(run_to_end(b, 0));
    const char *diff = first_difference(a, b);
    if (diff) printf("\n  %s differs", diff);
    CU_ASSERT(diff == NULL);
    checkpoint_info_free(&info);
    sim_destroy(a);
    sim_destroy(b);
    scenario_free(sc);
    scenario_free(sc2);
}

/* stop_run for the scenario file yaml, with the partial result out.part */
static bool stop_run_with_output(const char *yaml, const char *out, const char *ckpt,
                                 long stop_at)
{
    abl_scenario *sc = NULL;
    abl_error err = {0};
    if (scenario_load(yaml, NULL, 0, &sc, &err)) {
        printf("\n  %s", err.msg);
        return false;
    }
    const long at = stop_run(sc, stop_at, ckpt, out);
    scenario_free(sc);
    return at >= 0;
}

/* Two interrupted runs to one output (found by a read-only review, session 22): run A stops
 * with checkpoint a.ckpt.h5 and partial result x.h5.part; run B to the same output (the user
 * started over, --overwrite-checkpoint on the command line) stops with b.ckpt.h5, its .part
 * replacing A's. Resuming A used to reopen B's .part, pad its snapshot history with zeros to
 * A's count and finish a result of two runs' snapshots, and B's partial result was gone. Now
 * the .part carries an id that the checkpoint records: resuming A is refused and changes
 * nothing, and B resumes to a complete result. */
static void test_foreign_partial_result(void)
{
    char dir[700], ya[800], yb[800], out[800], part[820], ca[800], cb[800], errf[800];
    tu_subdir(dir, sizeof dir, "foreign_part");
    snprintf(ya, sizeof ya, "%s/a.yaml", dir);
    snprintf(yb, sizeof yb, "%s/b.yaml", dir);
    snprintf(out, sizeof out, "%s/x.h5", dir);
    snprintf(part, sizeof part, "%s/x.h5.part", dir);
    snprintf(ca, sizeof ca, "%s/a.ckpt.h5", dir);
    snprintf(cb, sizeof cb, "%s/b.ckpt.h5", dir);
    snprintf(errf, sizeof errf, "%s/err.txt", dir);
    for (int k = 0; k < 2; k++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "name: %s\ntissues_file: %s/configs/tissues.yaml\n"
                 "grid: {dims: [12, 12, 12], spacing_mm: [1, 1, 1], background: liver}\n"
                 "physics: {initial_temperature_C: %d}\n"
                 "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
                 "time: {duration_s: 200, dt_s: 0.5}\n"
                 "output: {snapshot_interval_s: 1}\n",
                 k ? "b" : "a", tu_root(), k ? 70 : 37);
        tu_spit(k ? yb : ya, text);
    }
    CU_ASSERT_FATAL(stop_run_with_output(ya, out, ca, 200)); /* ~100 snapshots */
    CU_ASSERT_FATAL(stop_run_with_output(yb, out, cb, 40));  /* ~20: replaces A's .part */
    const unsigned long long before = tu_file_sum(part);
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' resume a.ckpt.h5 -q", dir, tu_bin());
    const int rc = tu_run(cmd, NULL, errf);
    char *e = tu_slurp(errf);
    printf("\n  resume A: exit %d: %s", rc, e ? e : "");
    CU_ASSERT_EQUAL(rc, 2);
    CU_ASSERT(e && strstr(e, "is not this checkpoint's") != NULL);
    free(e);
    CU_ASSERT(tu_exists(part) && tu_file_sum(part) == before); /* B's partial result kept */
    CU_ASSERT(!tu_exists(out));
    CU_ASSERT(tu_exists(ca)); /* A's checkpoint too: nothing of it was consumed */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' resume b.ckpt.h5 -q", dir, tu_bin());
    CU_ASSERT_EQUAL(tu_run(cmd, NULL, errf), 0);
    CU_ASSERT(tu_exists(out) && !tu_exists(part));
}

/* One double of a rank-3 dataset (a result's field) at voxel (0, 0, 0). */
static void poke_voxel0(const char *path, const char *dset, double v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = f >= 0 ? H5Dopen2(f, dset, H5P_DEFAULT) : -1;
    hid_t fs = d >= 0 ? H5Dget_space(d) : -1;
    const hsize_t start[3] = {0, 0, 0}, one[3] = {1, 1, 1};
    hid_t ms = H5Screate_simple(3, one, NULL);
    CU_ASSERT_FATAL(fs >= 0);
    CU_ASSERT_FATAL(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, one, NULL) >= 0);
    CU_ASSERT_FATAL(H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, &v) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    CU_ASSERT_FATAL(H5Fclose(f) >= 0);
}

/* A run whose probe comes from a device preset: the presets file edited between the stop and
 * the resume is refused, naming it (the resumed run took the new preset, exit 0, before
 * session 23's adversarial review); restored, it resumes. */
static void test_devices_changed(void)
{
    char dev[700], ckpt[700], from[700], yaml[3000];
    snprintf(dev, sizeof dev, "%s/devices_copy.yaml", tu_tmpdir());
    snprintf(ckpt, sizeof ckpt, "%s/devices.ckpt.h5", tu_tmpdir());
    snprintf(from, sizeof from, "%s/configs/devices.yaml", tu_root());
    char *orig = tu_slurp(from);
    CU_ASSERT_FATAL(orig != NULL);
    tu_spit(dev, orig);
    snprintf(yaml, sizeof yaml,
             "name: devices_case\ntissues_file: tissues.yaml\ndevices_file: %s\n"
             "grid: {dims: [16, 16, 16], spacing_mm: [1.5, 1.5, 1.5], background: liver}\n"
             "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
             "time: {duration_s: 30}\n"
             "sources:\n"
             "  - name: cryo\n"
             "    type: cryo\n"
             "    device: cryoneedle_17g\n"
             "    protocol:\n"
             "      - {phase: freeze, duration_s: 30, temperature_C: -150}\n"
             "    probes:\n"
             "      - {tip_mm: [0.75, 0.75, -5], direction: [0, 0, 1], active_length_mm: 8}\n",
             dev);
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    CU_ASSERT_FATAL(stop_run(sc, 5, ckpt, NULL) > 0);
    size_t n = strlen(orig);
    char *edited = malloc(n + 32);
    CU_ASSERT_FATAL(edited != NULL);
    snprintf(edited, n + 32, "%s# edited\n", orig);
    tu_spit(dev, edited);
    const char *frag[] = {ckpt, "the device presets file", "changed since the checkpoint", NULL};
    expect_refused(ckpt, ABL_EINVAL, frag);
    tu_spit(dev, orig);
    expect_resumes(ckpt);
    scenario_free(sc);
    free(edited);
    free(orig);
    remove(ckpt);
}

/* A second ablation (physics.initial_state_file) stopped and resumed equals its uninterrupted
 * run bitwise. Its time maps start from the first run's times, so they exceed this run's elapsed
 * time: the checkpoint check bounded them by the elapsed time alone and refused every such
 * checkpoint (found by an adversarial review, session 23). The first run holds a 95 C tip for
 * 40 s, so the voxels beside it start the second run with tens of seconds above 50 C; the stop
 * is at step 10. */
static void test_resume_from_state(void)
{
    const resume_case *c = &cases[1]; /* fixed_temperature */
    char first[700], ckpt[700], phys[900];
    snprintf(first, sizeof first, "%s/state_first.h5", tu_tmpdir());
    snprintf(ckpt, sizeof ckpt, "%s/state_second.ckpt.h5", tu_tmpdir());
    abl_scenario *s1 = resume_scenario(c->N, c->duration_s, "explicit", NULL, c->source);
    CU_ASSERT_FATAL(s1 != NULL);
    abl_sim *a1 = tu_sim(s1);
    CU_ASSERT_FATAL(a1 != NULL);
    abl_run_opts o1 = {.output_path = first, .resume_snapshots = -1};
    abl_error err = {0};
    CU_ASSERT_FATAL(sim_run(a1, &o1, &err) == ABL_OK);
    sim_destroy(a1);
    scenario_free(s1);

    snprintf(phys, sizeof phys, ", initial_state_file: %s", first);
    abl_scenario *s2 = resume_scenario(c->N, c->duration_s, "explicit", phys, c->source);
    CU_ASSERT_FATAL(s2 != NULL);
    abl_sim *whole = tu_sim(s2);
    CU_ASSERT_FATAL(whole != NULL);
    double start_max = 0.0;
    for (size_t v = 0; v < whole->grid.n; v++) start_max = fmax(start_max, whole->t_hot[0][v]);
    CU_ASSERT_FATAL(run_to_end(whole, -1));
    const long at = stop_run(s2, 10, ckpt, NULL);
    CU_ASSERT_FATAL(at > 0);
    abl_scenario *s3 = NULL;
    abl_sim *b = resume_from(ckpt, &s3, &err);
    if (!b) printf("\n  resume: %s", err.msg);
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT_FATAL(run_to_end(b, -1));
    const char *d = first_difference(whole, b);
    printf("\n  second ablation (state maps up to %.1f s above 50 C at its start) stopped at "
           "step %ld, resumed: %s",
           start_max, at, d ? d : "bitwise identical");
    CU_ASSERT(start_max > 10.0); /* the check would have refused the checkpoint */
    CU_ASSERT(d == NULL);
    /* the state file changed between the stop and the resume (one voxel's damage): refused,
     * naming it; back as it was, it resumes */
    poke_voxel0(first, "/fields/damage_omega", 0.5);
    const char *chg[] = {ckpt, "the initial state", "changed since the checkpoint", NULL};
    expect_refused(ckpt, ABL_EINVAL, chg);
    poke_voxel0(first, "/fields/damage_omega", 0.0);
    expect_resumes(ckpt);
    sim_destroy(whole);
    sim_destroy(b);
    scenario_free(s2);
    scenario_free(s3);
    remove(ckpt);
}

void register_resume_tests(void)
{
    CU_pSuite s = CU_add_suite("resume", NULL, NULL);
    CU_add_test(s, "stop/resume matrix: 10 sources x 2 schemes x 3 stops, bitwise", test_matrix);
    CU_add_test(s, "a second ablation (initial state) stopped and resumed, bitwise",
                test_resume_from_state);
    CU_add_test(s, "device presets edited between stop and resume: refused, naming the file",
                test_devices_changed);
    CU_add_test(s, "a partial result another run replaced is refused, not continued",
                test_foreign_partial_result);
    CU_add_test(s, "damaged checkpoints refused (byte flip, HDF5 edits, format, version)",
                test_damage);
    CU_add_test(s, "impossible state refused (NaN, T > T_max, dose < 0, time map)",
                test_invalid_state);
    CU_add_test(s, "changed or missing tissue table / mesh refused, naming them", test_provenance);
    CU_add_test(s, "restored into another step or a shorter run: refused, nothing applied",
                test_scenario_mismatch);
    CU_add_test(s, "resume from another working directory (absolute paths), bitwise",
                test_other_cwd);
}
