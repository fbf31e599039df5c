/* checkpoint.c - write and restore simulation state (see checkpoint.h). */
#include "ablasim/checkpoint.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/source.h"
#include "ablasim/version.h"
#include "h5util.h"

#define CKPT_FORMAT 1

static abl_status h5err(abl_error *err, const char *path, const char *what)
{
    char d[512];
    h5_detail(d, sizeof d);
    return abl_fail(err, ABL_EIO, "%s: %s failed%s", path, what, d);
}

static int put_str(hid_t obj, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    herr_t r = H5Tset_size(t, H5T_VARIABLE);
    hid_t sp = r >= 0 ? H5Screate(H5S_SCALAR) : -1;
    hid_t a = sp >= 0 ? H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT) : -1;
    r = a >= 0 ? H5Awrite(a, t, &v) : -1;
    close_id(a);
    close_id(sp);
    close_id(t);
    return r < 0 ? -1 : 0;
}

static int put_num(hid_t obj, const char *name, hid_t type, const void *v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = sp >= 0 ? H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT) : -1;
    herr_t r = a >= 0 ? H5Awrite(a, type, v) : -1;
    close_id(a);
    close_id(sp);
    return r < 0 ? -1 : 0;
}

static int get_num(hid_t obj, const char *name, hid_t type, void *v)
{
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    herr_t r = a >= 0 ? H5Aread(a, type, v) : -1;
    close_id(a);
    return r < 0 ? -1 : 0;
}

/* Variable-length string attribute into a malloc'ed copy. */
static char *get_str(hid_t obj, const char *name)
{
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return NULL;
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    char *v = NULL, *copy = NULL;
    if (H5Aread(a, t, &v) >= 0 && v) {
        copy = malloc(strlen(v) + 1);
        if (copy) strcpy(copy, v);
        H5free_memory(v);
    }
    close_id(t);
    close_id(a);
    return copy;
}

static int put_array(hid_t loc, const char *name, hid_t ftype, hid_t mtype, hsize_t n,
                     const void *data)
{
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = sp >= 0 ? H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)
                      : -1;
    herr_t r = d >= 0 ? (n ? H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0) : -1;
    close_id(d);
    close_id(sp);
    return r < 0 ? -1 : 0;
}

/* Read a 1-D dataset of exactly n values. */
static int get_array(hid_t loc, const char *name, hid_t mtype, hsize_t n, void *data)
{
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    hsize_t have = 0;
    int ok = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 &&
             H5Sget_simple_extent_dims(sp, &have, NULL) == 1 && have == n;
    herr_t r = ok && n ? H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : (ok ? 0 : -1);
    close_id(sp);
    close_id(d);
    return r < 0 ? -1 : 0;
}

/* Dataset of source i's state blob (source.h state_io) in /state. */
static void source_blob_name(char *buf, size_t len, int i)
{
    snprintf(buf, len, "/state/source_%d", i);
}

/* Save every stateful source (state_io) as a uint8 dataset with its name as an attribute. */
static abl_status write_source_states(hid_t f, const abl_sim *s, const char *tmp,
                                      abl_error *err)
{
    for (int i = 0; i < s->nsources; i++) {
        abl_source *src = s->sources[i];
        if (!src->ops->state_io) continue;
        abl_blob b = {ABL_BLOB_COUNT, NULL, 0, 0, false};
        abl_status st = src->ops->state_io(src, &b, err);
        if (st) return st;
        const size_t len = b.pos;
        unsigned char *buf = malloc(len ? len : 1);
        if (!buf) return abl_fail(err, ABL_ENOMEM, "out of memory saving source '%s'", src->name);
        b = (abl_blob){ABL_BLOB_SAVE, buf, len, 0, false};
        st = src->ops->state_io(src, &b, err);
        if (st == ABL_OK && b.pos != len)
            st = abl_fail(err, ABL_EINTERNAL,
                          "source '%s': its state took %zu bytes to count but %zu to save",
                          src->name, len, b.pos);
        char name[64];
        source_blob_name(name, sizeof name, i);
        hid_t d = -1;
        if (st == ABL_OK &&
            (put_array(f, name, H5T_STD_U8LE, H5T_NATIVE_UINT8, (hsize_t)len, buf) ||
             (d = H5Dopen2(f, name, H5P_DEFAULT)) < 0 || put_str(d, "source_name", src->name)))
            st = h5err(err, tmp, "writing the state of a source to the checkpoint");
        close_id(d);
        free(buf);
        if (st) return st;
    }
    return ABL_OK;
}

/* Load the state of every stateful source of s (created from the same scenario). */
static abl_status read_source_states(hid_t f, abl_sim *s, const char *path, abl_error *err)
{
    for (int i = 0; i < s->nsources; i++) {
        abl_source *src = s->sources[i];
        if (!src->ops->state_io) continue;
        char name[64];
        source_blob_name(name, sizeof name, i);
        hid_t d = H5Lexists(f, name, H5P_DEFAULT) > 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
        hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
        hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
        close_id(sp);
        if (d < 0 || n < 0) {
            close_id(d);
            return abl_fail(err, ABL_EINVAL,
                            "%s: the checkpoint holds no state for source '%s' (written by an "
                            "ablasim without it, or for another scenario)",
                            path, src->name);
        }
        unsigned char *buf = malloc(n ? (size_t)n : 1);
        abl_status st = ABL_OK;
        if (!buf) st = abl_fail(err, ABL_ENOMEM, "out of memory restoring source '%s'", src->name);
        else if (n && H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
            st = h5err(err, path, "reading the state of a source");
        close_id(d);
        if (st == ABL_OK) {
            abl_blob b = {ABL_BLOB_LOAD, buf, (size_t)n, 0, false};
            st = src->ops->state_io(src, &b, err);
            if (st == ABL_OK && (b.bad || b.pos != b.len))
                st = abl_fail(err, ABL_EINVAL,
                              "%s: the checkpointed state of source '%s' (%lld bytes) does not "
                              "fit the source as created now (%zu bytes read): the scenario "
                              "changed since",
                              path, src->name, (long long)n, b.pos);
        }
        free(buf);
        if (st) return st;
    }
    return ABL_OK;
}

typedef struct {
    const char *name;
    int is_float; /* 0 double, 1 float, 2 uint8 */
    void *data;
} field_ref;

static hid_t file_type(int kind)
{
    return kind == 0 ? H5T_IEEE_F64LE : kind == 1 ? H5T_IEEE_F32LE : H5T_STD_U8LE;
}

static hid_t mem_type(int kind)
{
    return kind == 0 ? H5T_NATIVE_DOUBLE : kind == 1 ? H5T_NATIVE_FLOAT : H5T_NATIVE_UINT8;
}

/* Every evolving per-voxel field, in a fixed order. Returns the count. */
static int state_fields(const abl_sim *s, field_ref *f)
{
    int n = 0;
    f[n++] = (field_ref){"T_C", 0, s->T};
    f[n++] = (field_ref){"T_max_C", 0, s->T_max};
    f[n++] = (field_ref){"T_min_C", 0, s->T_min};
    f[n++] = (field_ref){"damage_omega", 0, s->omega};
    f[n++] = (field_ref){"cem43_min", 0, s->cem43_min};
    static char names[2 * ABL_MAX_THRESHOLDS][32];
    for (int h = 0; h < s->sc->n_hot; h++) {
        snprintf(names[h], sizeof names[h], "t_hot_%d_s", h);
        f[n++] = (field_ref){names[h], 1, s->t_hot[h]};
    }
    for (int h = 0; h < s->sc->n_cold; h++) {
        snprintf(names[ABL_MAX_THRESHOLDS + h], sizeof names[0], "t_cold_%d_s", h);
        f[n++] = (field_ref){names[ABL_MAX_THRESHOLDS + h], 1, s->t_cold[h]};
    }
    /* freeze-thaw counts exist when freezing is modelled (same scenario on resume: same set) */
    if (s->freeze_cycles) f[n++] = (field_ref){"freeze_cycles", 1, s->freeze_cycles};
    /* the hysteresis state of the freeze counting, and the needle-track mask */
    if (s->frozen_now) f[n++] = (field_ref){"frozen_now", 2, s->frozen_now};
    if (s->applicator) f[n++] = (field_ref){"applicator_mask", 2, s->applicator};
    return n;
}

/* Most fields state_fields can return. */
#define MAX_STATE_FIELDS (5 + 2 * ABL_MAX_THRESHOLDS + 3)

abl_status checkpoint_write(const char *path, const abl_sim *s, const char *output_path,
                            long snapshots_written, abl_error *err)
{
    const abl_scenario *sc = s->sc;
    size_t len = strlen(path) + 8;
    char *tmp = malloc(len);
    if (!tmp) return abl_fail(err, ABL_ENOMEM, "out of memory");
    snprintf(tmp, len, "%s.tmp", path);
    h5_quiet q;
    quiet_begin(&q);
    abl_status st = ABL_OK;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), f = -1, root = -1, grp = -1;
    if (fapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 ||
        (f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0) {
        st = h5err(err, tmp, "creating the checkpoint");
        goto done;
    }
    /* the scenario as loaded, the loop counters, the bookkeeping */
    size_t setlen = 1;
    for (int i = 0; i < sc->nsets; i++) setlen += strlen(sc->sets[i]) + 1;
    char *sets = calloc(setlen, 1);
    if (!sets) {
        st = abl_fail(err, ABL_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < sc->nsets; i++) {
        strcat(sets, sc->sets[i]);
        strcat(sets, "\n");
    }
    const int format = CKPT_FORMAT;
    const long long step = s->step, nsnap = snapshots_written, ncg = (long long)s->n_cg;
    const long long nvox = (long long)s->grid.n;
    root = H5Gcreate2(f, "/checkpoint", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int bad = root < 0 || put_num(root, "format", H5T_NATIVE_INT, &format) ||
              put_str(root, "ablasim_version", ABLASIM_VERSION) ||
              put_str(root, "scenario_path", sc->path) ||
              put_str(root, "scenario_base_dir", sc->base_dir) ||
              put_str(root, "scenario_file_text", sc->file_text) || put_str(root, "sets", sets) ||
              put_str(root, "output_path", output_path ? output_path : "") ||
              put_num(root, "step", H5T_NATIVE_LLONG, &step) ||
              put_num(root, "voxels", H5T_NATIVE_LLONG, &nvox) ||
              put_num(root, "snapshots_written", H5T_NATIVE_LLONG, &nsnap) ||
              put_num(root, "solves", H5T_NATIVE_LLONG, &ncg) ||
              put_num(root, "dt_s", H5T_NATIVE_DOUBLE, &s->dt_s) ||
              put_num(root, "monitor_accum_s", H5T_NATIVE_DOUBLE, &s->monitor_accum_s) ||
              put_num(root, "wall_s", H5T_NATIVE_DOUBLE, &s->wall_s) ||
              put_num(root, "E_stored_initial_J", H5T_NATIVE_DOUBLE,
                      &s->energy.E_stored_initial_J) ||
              put_num(root, "E_sources_J", H5T_NATIVE_DOUBLE, &s->energy.E_sources_J) ||
              put_num(root, "E_perf_met_J", H5T_NATIVE_DOUBLE, &s->energy.E_perf_met_J) ||
              put_num(root, "E_boundary_in_J", H5T_NATIVE_DOUBLE, &s->energy.E_boundary_in_J);
    free(sets);
    if (bad) {
        st = h5err(err, tmp, "writing the checkpoint attributes");
        goto done;
    }
    grp = H5Gcreate2(f, "/state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    field_ref fr[MAX_STATE_FIELDS];
    int nf = state_fields(s, fr);
    for (int i = 0; i < nf && !bad; i++)
        bad = grp < 0 || put_array(grp, fr[i].name, file_type(fr[i].is_float),
                                   mem_type(fr[i].is_float), s->grid.n, fr[i].data);
    if (!bad && s->n_cg)
        bad = put_array(f, "/state/cg_iterations", H5T_STD_I32LE, H5T_NATIVE_INT, s->n_cg,
                        s->cg_iters) ||
              put_array(f, "/state/cg_residual", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s->n_cg,
                        s->cg_resid) ||
              put_array(f, "/state/cg_time_s", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, s->n_cg,
                        s->cg_time_s);
    if (bad) {
        st = h5err(err, tmp, "writing the checkpoint fields");
        goto done;
    }
    if ((st = write_source_states(f, s, tmp, err))) goto done;
    close_id(grp);
    close_id(root);
    grp = root = -1;
    if (H5Fclose(f) < 0) {
        f = -1;
        st = h5err(err, tmp, "closing the checkpoint");
        goto done;
    }
    f = -1;
    if (rename(tmp, path) != 0)
        st = abl_fail(err, ABL_EIO, "%s: cannot rename the checkpoint into place (%s)", path,
                      strerror(errno));
done:
    close_id(grp);
    close_id(root);
    close_id(f);
    close_id(fapl);
    quiet_end(&q);
    if (st) remove(tmp);
    free(tmp);
    return st;
}

void checkpoint_info_free(abl_checkpoint_info *info)
{
    free(info->output_path);
    info->output_path = NULL;
}

abl_status checkpoint_load_scenario(const char *path, abl_scenario **sc, abl_checkpoint_info *info,
                                    abl_error *err)
{
    *sc = NULL;
    memset(info, 0, sizeof *info);
    h5_quiet q;
    quiet_begin(&q);
    abl_status st = ABL_OK;
    char *spath = NULL, *text = NULL, *sets = NULL, *dir = NULL, **list = NULL;
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        quiet_end(&q);
        return abl_fail(err, ABL_EIO, "%s: cannot open checkpoint: %s", path, strerror(errno));
    }
    fclose(probe);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t root = f >= 0 ? H5Gopen2(f, "/checkpoint", H5P_DEFAULT) : -1;
    int format = 0;
    long long nsnap = 0;
    if (f < 0) {
        st = h5err(err, path, "reading the checkpoint (not an HDF5 file, or truncated?)");
        goto done;
    }
    if (root < 0 || get_num(root, "format", H5T_NATIVE_INT, &format) || format != CKPT_FORMAT) {
        st = abl_fail(err, ABL_EINVAL, "%s: not an ablasim checkpoint (format %d expected)", path,
                      CKPT_FORMAT);
        goto done;
    }
    spath = get_str(root, "scenario_path");
    text = get_str(root, "scenario_file_text");
    sets = get_str(root, "sets");
    dir = get_str(root, "scenario_base_dir");
    info->output_path = get_str(root, "output_path");
    if (!spath || !text || !sets || !dir || !info->output_path ||
        get_num(root, "snapshots_written", H5T_NATIVE_LLONG, &nsnap)) {
        st = abl_fail(err, ABL_EIO, "%s: checkpoint incomplete (scenario attributes missing)",
                      path);
        goto done;
    }
    info->snapshots_written = (long)nsnap;
    int nsets = 0;
    for (char *p = sets; *p; p++) nsets += *p == '\n';
    list = calloc((size_t)nsets + 1, sizeof *list);
    if (!list) {
        st = abl_fail(err, ABL_ENOMEM, "out of memory");
        goto done;
    }
    nsets = 0;
    for (char *p = strtok(sets, "\n"); p; p = strtok(NULL, "\n")) list[nsets++] = p;
    quiet_end(&q);
    st = scenario_load_string(text, spath, dir, (const char *const *)list, nsets, sc, err);
    quiet_begin(&q);
done:
    close_id(root);
    close_id(f);
    quiet_end(&q);
    free(list);
    free(spath);
    free(text);
    free(sets);
    free(dir);
    if (st) checkpoint_info_free(info);
    return st;
}

abl_status checkpoint_restore(const char *path, abl_sim *s, abl_error *err)
{
    h5_quiet q;
    quiet_begin(&q);
    abl_status st = ABL_OK;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t root = f >= 0 ? H5Gopen2(f, "/checkpoint", H5P_DEFAULT) : -1;
    hid_t grp = f >= 0 ? H5Gopen2(f, "/state", H5P_DEFAULT) : -1;
    long long step = 0, nvox = 0, ncg = 0;
    double dt = 0;
    if (root < 0 || grp < 0 || get_num(root, "step", H5T_NATIVE_LLONG, &step) ||
        get_num(root, "voxels", H5T_NATIVE_LLONG, &nvox) ||
        get_num(root, "solves", H5T_NATIVE_LLONG, &ncg) ||
        get_num(root, "dt_s", H5T_NATIVE_DOUBLE, &dt) ||
        get_num(root, "monitor_accum_s", H5T_NATIVE_DOUBLE, &s->monitor_accum_s) ||
        get_num(root, "wall_s", H5T_NATIVE_DOUBLE, &s->wall_s) ||
        get_num(root, "E_stored_initial_J", H5T_NATIVE_DOUBLE, &s->energy.E_stored_initial_J) ||
        get_num(root, "E_sources_J", H5T_NATIVE_DOUBLE, &s->energy.E_sources_J) ||
        get_num(root, "E_perf_met_J", H5T_NATIVE_DOUBLE, &s->energy.E_perf_met_J) ||
        get_num(root, "E_boundary_in_J", H5T_NATIVE_DOUBLE, &s->energy.E_boundary_in_J)) {
        st = h5err(err, path, "reading the checkpoint state");
        goto done;
    }
    if ((size_t)nvox != s->grid.n || dt != s->dt_s) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: the checkpoint (%lld voxels, dt %g s) does not match the scenario as "
                      "loaded now (%zu voxels, dt %g s): the scenario, tissue table or mesh "
                      "changed since",
                      path, nvox, dt, s->grid.n, s->dt_s);
        goto done;
    }
    field_ref fr[MAX_STATE_FIELDS];
    int nf = state_fields(s, fr);
    for (int i = 0; i < nf; i++)
        if (get_array(grp, fr[i].name, mem_type(fr[i].is_float), s->grid.n, fr[i].data)) {
            st = h5err(err, path, "reading checkpoint field");
            goto done;
        }
    if (ncg > 0) {
        s->n_cg = 0;
        s->cap_cg = (size_t)ncg;
        s->cg_iters = realloc(s->cg_iters, (size_t)ncg * sizeof *s->cg_iters);
        s->cg_resid = realloc(s->cg_resid, (size_t)ncg * sizeof *s->cg_resid);
        s->cg_time_s = realloc(s->cg_time_s, (size_t)ncg * sizeof *s->cg_time_s);
        if (!s->cg_iters || !s->cg_resid || !s->cg_time_s) {
            st = abl_fail(err, ABL_ENOMEM, "out of memory");
            goto done;
        }
        if (get_array(grp, "cg_iterations", H5T_NATIVE_INT, (hsize_t)ncg, s->cg_iters) ||
            get_array(grp, "cg_residual", H5T_NATIVE_DOUBLE, (hsize_t)ncg, s->cg_resid) ||
            get_array(grp, "cg_time_s", H5T_NATIVE_DOUBLE, (hsize_t)ncg, s->cg_time_s)) {
            st = h5err(err, path, "reading the solver log");
            goto done;
        }
        s->n_cg = (size_t)ncg;
    }
    if ((st = read_source_states(f, s, path, err))) goto done;
    s->step = (long)step;
    s->t_s = s->step * s->dt_s;
done:
    close_id(grp);
    close_id(root);
    close_id(f);
    quiet_end(&q);
    return st;
}
