/* source.h - the one interface through which heat enters (or leaves) the tissue.
 *
 * Each step the driver asks every source for its contribution at the start of the step, t_s:
 *  - heat: a power density q [W/m^3] on a set of voxels (sparse: index + value), added to the
 *    Pennes right-hand side;
 *  - pins: voxels held at a temperature [C] (electrode or probe surfaces).
 * A source owns the arrays it returns; they stay valid until its next update or destroy. Later
 * modalities (RFA, MWA, cryo) implement the same three functions, reading the current
 * temperature field and tissue labels from the view to compute temperature-dependent sources.
 */
#ifndef ABLASIM_SOURCE_H
#define ABLASIM_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "ablasim/grid.h"
#include "ablasim/scenario.h"
#include "ablasim/status.h"

typedef struct {
    const abl_grid *grid;
    const uint8_t *material; /* material index per voxel */
    const double *T_C;       /* current temperature */
    double t_s;              /* time at the start of the step */
    double dt_s;
} abl_field_view;

typedef struct {
    size_t n_heat;
    const size_t *heat_idx;
    const double *heat_q_W_m3;
    size_t n_pin;
    const size_t *pin_idx;
    const double *pin_T_C;
} abl_source_contrib;

typedef struct abl_source abl_source;
typedef struct {
    const char *type;
    /* Fill *out for the step starting at v->t_s. */
    abl_status (*update)(abl_source *s, const abl_field_view *v, abl_source_contrib *out,
                         abl_error *err);
    void (*destroy)(abl_source *s);
} abl_source_ops;

struct abl_source {
    const abl_source_ops *ops;
    char name[64];
    void *state;
};

/* Build the source described by cfg on grid g (voxel sets computed once here). Fails when the
 * source volume contains no voxel centre (outside the grid or smaller than a voxel). */
abl_status source_create(const abl_source_cfg *cfg, const abl_grid *g, abl_source **out,
                         abl_error *err);
void source_destroy(abl_source *s);

#endif
