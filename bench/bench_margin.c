/* NAME     bench_margin - the margin check against the simulation that produced it (issue 7)
 * PURPOSE  Runs a heterogeneous 256^3 liver simulation at 0.5 mm (tumour, vessel, electrode
 *          held at 90 C; explicit scheme) with its HDF5 output, then `margin_analyse_result`
 *          on that file (read, all zone masks, three exact distance transforms, margin file),
 *          and prints both wall times and their ratio. Acceptance: margin < 10 % of simulation.
 * USAGE    make bench (or build/rel/bench/bench_margin [--quick]: 128^3)
 * Self-check: the margin verdict must be computed (status OK) and the minimal margin finite.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/margin.h"
#include "ablasim/scenario.h"
#include "ablasim/sim.h"

static const char *fmt =
    "name: bench_margin\n"
    "grid:\n"
    "  dims: [%d, %d, %d]\n"
    "  spacing_mm: [%g, %g, %g]\n"
    "  background: liver\n"
    "  shapes:\n"
    "    - {type: sphere, center_mm: [0, 0, 0], radius_mm: 10, tissue: tumour}\n"
    "    - {type: cylinder, start_mm: [-60, 16, -60], end_mm: [60, 16, 60], radius_mm: 3,\n"
    "       tissue: blood}\n"
    "time: {duration_s: %g}\n"
    "sources:\n"
    "  - {name: electrode, type: fixed_temperature, off_s: %g,\n"
    "     shape: {type: cylinder, start_mm: [0, 0, -12], end_mm: [0, 0, 12], radius_mm: 1.2},\n"
    "     schedule: [{time_s: 0, temperature_C: 37}, {time_s: 30, temperature_C: 95}]}\n"
    "output: {snapshot_interval_s: 0}\n";

int main(int argc, char **argv)
{
    const int quick = argc > 1 && !strcmp(argv[1], "--quick");
    const char *root = getenv("ABLASIM_ROOT");
    if (!root) root = ".";
    const int n = quick ? 128 : 256;
    const double h = quick ? 1.0 : 0.5, dur = quick ? 300 : 600;
    char yaml[2048], dir[600], out[700];
    snprintf(yaml, sizeof yaml, fmt, n, n, n, h, h, h, dur, 0.8 * dur);
    snprintf(dir, sizeof dir, "%s/configs", root);
    snprintf(out, sizeof out, "%s/bench/results/bench_margin_tmp.h5", root);
    abl_error err = {0};
    abl_scenario *sc = NULL;
    abl_sim *s = NULL;
    if (scenario_load_string(yaml, "bench_margin", dir, NULL, 0, &sc, &err) ||
        sim_create(sc, &s, &err)) {
        fprintf(stderr, "bench_margin: %s\n", err.msg);
        return 1;
    }
    printf("bench_margin: %d^3 at %g mm, %g s protocol, %d threads\n", n, h, dur,
           omp_get_max_threads());
    abl_run_opts opts = {.output_path = out, .resume_snapshots = -1};
    double t0 = omp_get_wtime();
    if (sim_run(s, &opts, &err)) {
        fprintf(stderr, "bench_margin: %s\n", err.msg);
        return 1;
    }
    const double t_sim = omp_get_wtime() - t0;
    sim_destroy(s);
    scenario_free(sc);

    abl_margin_opts mo;
    memset(&mo, 0, sizeof mo);
    mo.result_path = out;
    mo.criterion = -1;
    mo.threshold = NAN;
    mo.criterion_mm = 5.0;
    abl_margin_report rep;
    memset(&rep, 0, sizeof rep);
    t0 = omp_get_wtime();
    if (margin_analyse_result(&mo, &rep, &err)) {
        fprintf(stderr, "bench_margin: %s\n", err.msg);
        return 1;
    }
    const double t_margin = omp_get_wtime() - t0;
    printf("  simulation (with HDF5 output): %.2f s\n", t_sim);
    printf("  margin check (read %.2f, distance transforms %.2f, write %.2f): %.2f s\n",
           rep.read_s, rep.compute_s, rep.write_s, t_margin);
    printf("  margin / simulation = %.1f %% (acceptance: < 10 %%); minimal margin %.2f mm, %s\n",
           100 * t_margin / t_sim, rep.m.min_margin_mm,
           rep.m.min_margin_mm > mo.criterion_mm ? "PASS" : "FAIL");
    remove(out);
    remove(rep.out_h5);
    remove(rep.out_json);
    char side[800];
    snprintf(side, sizeof side, "%.*s.json", (int)(strlen(out) - 3), out);
    remove(side);
    snprintf(side, sizeof side, "%.*s.xdmf", (int)(strlen(out) - 3), out);
    remove(side);
    return isnan(rep.m.min_margin_mm) ? 1 : 0;
}
