/* profile.c - names and the printed table of the per-phase timers (profile.h). */
#include "ablasim/profile.h"

#include <stdbool.h>

const char *const abl_prof_names[ABL_PROF_N] = {
    "sources", "potential", "properties", "kernel", "solver", "energy", "phase", "pins+heat",
    "monitor", "runlog", "output", "checkpoint"};

const char *const abl_prof_kernel_names[ABL_KER_N] = {
    "potential: CG operator", "potential: preconditioner", "potential: CG vectors",
    "solver: CG operator",    "solver: preconditioner",    "solver: CG vectors"};

/* One row: name (padded to width), seconds, share of total_s, calls, GB/s where bytes known. */
static void row(FILE *f, int width, const char *name, double s, long calls, double bytes,
                double total_s)
{
    fprintf(f, "  %-*s %10.3f %6.1f%% %10ld", width, name, s,
            total_s > 0 ? 100.0 * s / total_s : 0.0, calls);
    if (bytes > 0 && s > 0) fprintf(f, " %8.2f", bytes / s * 1e-9);
    fputc('\n', f);
}

void prof_print(FILE *f, const abl_profile *p, double total_s)
{
    double sum = 0;
    for (int i = 0; i < ABL_PROF_N; i++) sum += p->s[i];
    fprintf(f, "profile (wall seconds per phase; GB/s = minimum memory traffic / time):\n");
    fprintf(f, "  %-12s %10s %7s %10s %8s\n", "phase", "time_s", "share", "calls", "GB/s");
    for (int i = 0; i < ABL_PROF_N; i++)
        if (p->calls[i]) row(f, 12, abl_prof_names[i], p->s[i], p->calls[i], p->bytes[i], total_s);
    fprintf(f, "  %-12s %10.3f %6.1f%%   (the rest of the run loop: progress, stop checks)\n", "other",
            total_s - sum, total_s > 0 ? 100.0 * (total_s - sum) / total_s : 0.0);
    fprintf(f, "  %-12s %10.3f\n", "total", total_s);
    bool any = false;
    for (int k = 0; k < ABL_KER_N; k++) any = any || p->kcalls[k] > 0;
    if (!any) return;
    fprintf(f, "kernels inside the phases above (wall seconds; calls; GB/s where the traffic is "
               "known):\n");
    fprintf(f, "  %-28s %10s %7s %10s %8s\n", "kernel", "time_s", "share", "calls", "GB/s");
    for (int k = 0; k < ABL_KER_N; k++)
        if (p->kcalls[k])
            row(f, 28, abl_prof_kernel_names[k], p->ks[k], p->kcalls[k], p->kbytes[k], total_s);
}
