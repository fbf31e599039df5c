/* schedule.c - piecewise-linear schedules. */
#include "ablasim/schedule.h"

#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

abl_status schedule_constant(double v, abl_schedule *out, abl_error *err)
{
    out->n = 1;
    out->t_s = malloc(sizeof(double));
    out->v = malloc(sizeof(double));
    if (!out->t_s || !out->v) {
        schedule_free(out);
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    }
    out->t_s[0] = 0.0;
    out->v[0] = v;
    return ABL_OK;
}

/* The keys of a schedule point, declared once (config.h): time_s and one value key, by variant
 * (schedule_parse picks the variant from its value_key). */
enum { SCHEDULE_POWER, SCHEDULE_TEMPERATURE };
static const cfg_keydecl schedule_decl[] = {
    CFG_KEY("time_s", "s", "required", "[0, 1e7], not below the previous point",
            "time of the point"),
    {"power_W", "W", "required", "as the source's `power_W`",
     "power at that time (volumetric; an `mwa` source's schedule too)",
     .variants = 1u << SCHEDULE_POWER},
    {"temperature_C", "°C", "required", "as the source's `temperature_C`",
     "temperature at that time (fixed_temperature)", .variants = 1u << SCHEDULE_TEMPERATURE},
};
const cfg_keytable schedule_keys = CFG_KEYTABLE(schedule_decl);

abl_status schedule_parse(cfg_node *seq, const char *value_key, const cfg_range *range,
                          abl_schedule *out, abl_error *err)
{
    static const cfg_range time_range = {0, 1e7, false, false, "s"};
    char where[600], path[300];
    int variant = -1;
    for (size_t i = 0; i < schedule_keys.n; i++)
        for (int v = 0; v < 32; v++)
            if (schedule_decl[i].variants == 1u << v && !strcmp(schedule_decl[i].key, value_key))
                variant = v;
    if (variant < 0)
        return abl_fail(err, ABL_EINVAL, "internal: schedule value key '%s' is not declared in "
                        "schedule.c", value_key);
    out->n = 0;
    out->t_s = out->v = NULL;
    if (seq->kind != CFG_SEQ || seq->n == 0)
        return abl_fail(err, ABL_EINVAL,
                        "%s: '%s' must be a non-empty list of {time_s: t, %s: value} entries",
                        cfg_where(seq, where, sizeof where), cfg_path(seq, path, sizeof path),
                        value_key);
    out->t_s = malloc(seq->n * sizeof(double));
    out->v = malloc(seq->n * sizeof(double));
    if (!out->t_s || !out->v) {
        schedule_free(out);
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < seq->n; i++) {
        cfg_node *e = seq->items[i];
        abl_status st;
        if ((st = cfg_expect(e, CFG_MAP, true, "a mapping {time_s: t, value}", err)) ||
            (st = cfg_check_decl(e, &schedule_keys, variant, err)) ||
            (st = cfg_get_double(e, "time_s", true, 0, &time_range, &out->t_s[i], err)) ||
            (st = cfg_get_double(e, value_key, true, 0, range, &out->v[i], err))) {
            schedule_free(out);
            return st;
        }
        if (i > 0 && out->t_s[i] < out->t_s[i - 1]) {
            double t = out->t_s[i];
            schedule_free(out);
            return abl_fail(err, ABL_EINVAL,
                            "%s: '%s' time_s = %g is earlier than the previous entry; times must "
                            "not decrease",
                            cfg_where(e, where, sizeof where), cfg_path(e, path, sizeof path), t);
        }
        out->n++;
    }
    return ABL_OK;
}

/* The value approached from the left at t_s (differs from schedule_eval only at a step, two
 * points at the same time), so an integral up to a step uses the value before it. */
static double schedule_eval_left(const abl_schedule *s, double t_s)
{
    if (t_s <= s->t_s[0]) return s->v[0];
    for (int i = 1; i < s->n; i++) {
        if (t_s <= s->t_s[i]) {
            double t0 = s->t_s[i - 1], t1 = s->t_s[i];
            if (t1 == t0) continue; /* a step: the segment before it decides */
            double w = (t_s - t0) / (t1 - t0);
            return s->v[i - 1] + w * (s->v[i] - s->v[i - 1]);
        }
    }
    return s->v[s->n - 1];
}

double schedule_eval(const abl_schedule *s, double t_s)
{
    if (t_s <= s->t_s[0]) return s->v[0];
    for (int i = 1; i < s->n; i++) {
        if (t_s < s->t_s[i]) {
            double t0 = s->t_s[i - 1], t1 = s->t_s[i];
            double w = (t_s - t0) / (t1 - t0);
            return s->v[i - 1] + w * (s->v[i] - s->v[i - 1]);
        }
    }
    return s->v[s->n - 1];
}

/* Integral of the piecewise-linear function over [a, b]: trapezoids between the knots inside
 * (exact for a piecewise-linear function), the constant ends outside the first and last knot. */
static double integral(const abl_schedule *s, double a, double b)
{
    double sum = 0.0, x = a;
    for (int i = 0; i <= s->n && x < b; i++) {
        const double knot = i < s->n ? s->t_s[i] : INFINITY; /* next knot after x */
        if (knot <= x) continue;
        const double y = fmin(knot, b);
        sum += 0.5 * (schedule_eval(s, x) + schedule_eval_left(s, y)) * (y - x);
        x = y;
    }
    return sum;
}

double schedule_average(const abl_schedule *s, double a, double b)
{
    if (!(b > a)) return schedule_eval(s, a);
    return integral(s, a, b) / (b - a);
}

void schedule_free(abl_schedule *s)
{
    free(s->t_s);
    free(s->v);
    s->t_s = s->v = NULL;
    s->n = 0;
}
