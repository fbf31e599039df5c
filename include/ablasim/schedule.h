/* schedule.h - piecewise-linear functions of time (power in W, temperature in C).
 * Held at the first value before the first point and at the last value after the last one;
 * two points at the same time make a step.
 */
#ifndef ABLASIM_SCHEDULE_H
#define ABLASIM_SCHEDULE_H

#include "ablasim/config.h"

typedef struct {
    int n;
    double *t_s;
    double *v;
} abl_schedule;

/* The keys of a schedule point ({time_s, power_W} or {time_s, temperature_C}), declared once:
 * the unknown-key check of schedule_parse and the README reference read them. */
extern const cfg_keytable schedule_keys;

/* Parse a list of {time_s: t, <value_key>: v} maps (times non-decreasing, values in range).
 * value_key is one of the value keys of schedule_keys (power_W, temperature_C). */
abl_status schedule_parse(cfg_node *seq, const char *value_key, const cfg_range *range,
                          abl_schedule *out, abl_error *err);
/* A constant schedule. */
abl_status schedule_constant(double v, abl_schedule *out, abl_error *err);
double schedule_eval(const abl_schedule *s, double t_s);
/* Mean over [a, b] (exact: the integral of the piecewise-linear function / (b - a)); the value
 * at a when b <= a. Sources return this for a step so that every scheme delivers exactly the
 * energy the schedule asks for (source.h step_t0_s, step_h_s). */
double schedule_average(const abl_schedule *s, double a, double b);
void schedule_free(abl_schedule *s);

#endif
