/* checkpoint.c - write and restore simulation state (see checkpoint.h). */
#define _DEFAULT_SOURCE /* realpath (XSI) */
#include "ablasim/checkpoint.h"

#include <errno.h>
#include <float.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ablasim/fileguard.h"
#include "ablasim/runlog.h"
#include "ablasim/sim.h" /* checkpoint_restore fills the whole simulation */
#include "ablasim/source.h"
#include "ablasim/version.h"
#include "atomic_file.h"
#include "h5util.h"

/* Format history: 1 - ablasim 0.1 before issue 14 (no checksums, no provenance); 2 - checksums
 * of every dataset and attribute, build version, tissue properties and voxel materials the run
 * was made from, absolute paths; 3 - an RFA source with a far ground (the default since
 * session 17) stores the exterior's unit power in its state (a format-2 RFA state would be read
 * shifted by it). */
#define CKPT_FORMAT 3

#define ATTR_CHECKSUM "checksum_u64"
#define ATTR_ALL_ATTRS "attributes_checksum_u64"

#if H5_VERSION_GE(1, 12, 0)
typedef H5L_info2_t link_info;
#define link_visit H5Lvisit2
#else
typedef H5L_info_t link_info;
#define link_visit H5Lvisit
#endif

/* ---- checksums ------------------------------------------------------------------------------
 * A 64-bit checksum against damage (bit rot, a truncated or partly overwritten copy, a hand
 * edit), not against forgery. The bytes are read as little-endian 8-byte words (the last one
 * zero-padded); each word w updates the state h <- rotl(h ^ w K1, 31) K2 with odd K1, K2, so
 * every update is a bijection of h for a fixed w and of w for a fixed h; then the byte count is
 * folded in the same way (trailing zero bytes count) and splitmix64's finaliser spreads the
 * bits. A change confined to one 8-byte word therefore always changes the checksum; any other
 * damage goes unnoticed with probability ~2^-64. One multiply-rotate-multiply per 8 bytes:
 * GB/s, far below the cost of reading the file. Pieces (names, values) are chained through
 * hash_piece, each with its own length, so "ab"+"c" and "a"+"bc" differ. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint checksums read memory as little-endian words (the file's byte order)"
#endif

#define HASH_SEED 0x243f6a8885a308d3ULL /* pi: any fixed value */
#define HASH_K1 0x9e3779b97f4a7c15ULL
#define HASH_K2 0xbf58476d1ce4e5b9ULL

static inline uint64_t hash_word(uint64_t h, uint64_t w)
{
    h ^= w * HASH_K1;
    h = h << 31 | h >> 33;
    return h * HASH_K2;
}

static uint64_t hash_piece(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = hash_word(h, w);
    }
    if (i < n) {
        uint64_t w = 0;
        memcpy(&w, p + i, n - i);
        h = hash_word(h, w);
    }
    return hash_word(h, (uint64_t)n);
}

static uint64_t hash_finish(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ h >> 31;
}

static uint64_t checksum(const void *data, size_t n)
{
    return hash_finish(hash_piece(HASH_SEED, data, n));
}

/* ---- small HDF5 helpers --------------------------------------------------------------------- */

static abl_status h5err(abl_error *err, const char *path, const char *what)
{
    char d[512];
    h5_detail(d, sizeof d);
    return abl_fail(err, ABL_EIO, "%s: %s failed%s", path, what, d);
}

/* Attributes through h5util.h: strings in ASCII (HDF5's default, what checkpoints have always
 * had), numbers with the memory type as file type, as written since format 2. */
static int put_str(hid_t obj, const char *name, const char *v)
{
    return h5_attr_str_cset(obj, name, v, H5T_CSET_ASCII);
}

static int put_num(hid_t obj, const char *name, hid_t type, const void *v)
{
    return h5_attr_num(obj, name, type, type, v, 0);
}

static int get_num(hid_t obj, const char *name, hid_t type, void *v)
{
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    herr_t r = a >= 0 ? H5Aread(a, type, v) : -1;
    close_id(a);
    return r < 0 ? -1 : 0;
}

/* A string attribute (variable- or fixed-length, h5util.c) into a malloc'ed copy. */
static char *get_str(hid_t obj, const char *name)
{
    return h5_attr_str_read(obj, name);
}

/* 1-D dataset of n values with the checksum of their bytes (attribute checksum_u64). */
static int put_array(hid_t loc, const char *name, hid_t ftype, hid_t mtype, hsize_t n,
                     const void *data)
{
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d =
        sp >= 0 ? H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    herr_t r = d >= 0 ? (n ? H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0) : -1;
    if (r >= 0) r = h5_attr_u64(d, ATTR_CHECKSUM, checksum(data, (size_t)n * H5Tget_size(mtype)));
    close_id(d);
    close_id(sp);
    return r < 0 ? -1 : 0;
}

/* Read a 1-D dataset of exactly n values. */
static int get_array(hid_t loc, const char *name, hid_t mtype, hsize_t n, void *data)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return -1;
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

/* Length of a 1-D dataset (-1: absent or not 1-D). */
static long long array_length(hid_t loc, const char *name)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return -1;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t have = 0;
    long long n = sp >= 0 && H5Sget_simple_extent_ndims(sp) == 1 &&
                          H5Sget_simple_extent_dims(sp, &have, NULL) == 1
                      ? (long long)have
                      : -1;
    close_id(sp);
    close_id(d);
    return n;
}

/* ---- digest of every attribute ----------------------------------------------------------------
 * Over the root group's attributes and then every object of the file in name order (H5Lvisit):
 * its path, then its attributes in name order (H5Aiterate2, H5_INDEX_NAME), each as its name
 * and its value (variable-length strings: the string bytes; numbers: the native bytes), the
 * checksum attributes themselves left out. The writer computes it on the finished file, the
 * reader on the file as found, with the same code. */
typedef struct {
    uint64_t h;
    int bad;
} attr_digest;

static herr_t digest_attr(hid_t loc, const char *name, const H5A_info_t *info, void *op)
{
    (void)info;
    attr_digest *d = op;
    if (!strcmp(name, ATTR_CHECKSUM) || !strcmp(name, ATTR_ALL_ATTRS)) return 0;
    d->h = hash_piece(d->h, name, strlen(name));
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    int bad = t < 0 || np < 0;
    if (!bad && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        char *v = NULL;
        bad = np != 1 || mt < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Aread(a, mt, &v) < 0;
        if (!bad) d->h = hash_piece(d->h, v ? v : "", v ? strlen(v) : 0);
        if (v) H5free_memory(v);
        close_id(mt);
    } else if (!bad) {
        hid_t mt = H5Tget_native_type(t, H5T_DIR_ASCEND);
        size_t len = mt >= 0 ? H5Tget_size(mt) * (size_t)np : 0;
        unsigned char *buf = mt >= 0 ? malloc(len ? len : 1) : NULL;
        bad = !buf || (len && H5Aread(a, mt, buf) < 0);
        if (!bad) d->h = hash_piece(d->h, buf, len);
        free(buf);
        close_id(mt);
    }
    close_id(sp);
    close_id(t);
    close_id(a);
    d->bad |= bad;
    return bad ? -1 : 0;
}

static herr_t digest_link(hid_t g, const char *name, const link_info *info, void *op)
{
    (void)info;
    attr_digest *d = op;
    d->h = hash_piece(d->h, name, strlen(name));
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    hsize_t idx = 0;
    herr_t r = o >= 0 ? H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, digest_attr, d) : -1;
    close_id(o);
    if (r < 0) d->bad = 1;
    return r < 0 ? -1 : 0;
}

static int attributes_digest(hid_t f, uint64_t *out)
{
    attr_digest d = {HASH_SEED, 0};
    hid_t g = H5Gopen2(f, "/", H5P_DEFAULT);
    hsize_t idx = 0;
    herr_t r = g >= 0 ? H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, &idx, digest_attr, &d) : -1;
    if (r >= 0) r = link_visit(g, H5_INDEX_NAME, H5_ITER_INC, digest_link, &d);
    close_id(g);
    *out = hash_finish(d.h);
    return r < 0 || d.bad ? -1 : 0;
}

/* ---- verification on resume ----------------------------------------------------------------- */

typedef struct {
    const char *path;
    abl_error *err;
    abl_status st;
} verify_walk;

static herr_t verify_link(hid_t g, const char *name, const link_info *info, void *op)
{
    verify_walk *w = op;
    if (info->type != H5L_TYPE_HARD) {
        w->st = abl_fail(w->err, ABL_EINVAL,
                         "%s: checkpoint damaged: /%s is a link an ablasim checkpoint does not "
                         "have; it cannot be resumed",
                         w->path, name);
        return -1;
    }
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    if (o < 0) {
        w->st = abl_fail(w->err, ABL_EINVAL,
                         "%s: checkpoint damaged: /%s cannot be opened; it cannot be resumed",
                         w->path, name);
        return -1;
    }
    if (H5Iget_type(o) != H5I_DATASET) {
        close_id(o);
        return 0;
    }
    uint64_t want = 0;
    if (get_num(o, ATTR_CHECKSUM, H5T_NATIVE_UINT64, &want)) {
        close_id(o);
        w->st = abl_fail(w->err, ABL_EINVAL,
                         "%s: checkpoint damaged: /%s has no checksum (" ATTR_CHECKSUM
                         "); it cannot be resumed",
                         w->path, name);
        return -1;
    }
    hid_t t = H5Dget_type(o), sp = H5Dget_space(o);
    hid_t mt = t >= 0 ? H5Tget_native_type(t, H5T_DIR_ASCEND) : -1;
    hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    size_t len = mt >= 0 && np >= 0 ? H5Tget_size(mt) * (size_t)np : 0;
    unsigned char *buf = mt >= 0 && np >= 0 ? malloc(len ? len : 1) : NULL;
    int readable = buf && (len == 0 || H5Dread(o, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    uint64_t have = readable ? checksum(buf, len) : 0;
    free(buf);
    close_id(mt);
    close_id(sp);
    close_id(t);
    close_id(o);
    if (!readable || have != want) {
        w->st = abl_fail(w->err, ABL_EINVAL, "%s: checkpoint damaged: /%s %s; it cannot be resumed",
                         w->path, name, readable ? "checksum mismatch" : "cannot be read");
        return -1;
    }
    return 0;
}

/* Every dataset's checksum and the digest of all attributes; first damage found -> EINVAL. */
static abl_status verify_checksums(hid_t f, hid_t root, const char *path, abl_error *err)
{
    uint64_t want = 0, have = 0;
    if (get_num(root, ATTR_ALL_ATTRS, H5T_NATIVE_UINT64, &want))
        return abl_fail(err, ABL_EINVAL,
                        "%s: checkpoint damaged: /checkpoint has no " ATTR_ALL_ATTRS
                        " attribute; it cannot be resumed",
                        path);
    verify_walk w = {path, err, ABL_OK};
    hid_t g = H5Gopen2(f, "/", H5P_DEFAULT);
    herr_t r = g >= 0 ? link_visit(g, H5_INDEX_NAME, H5_ITER_INC, verify_link, &w) : -1;
    close_id(g);
    if (w.st) return w.st;
    if (r < 0)
        return abl_fail(err, ABL_EINVAL,
                        "%s: checkpoint damaged: its object tree cannot be walked; it cannot be "
                        "resumed",
                        path);
    if (attributes_digest(f, &have) || have != want)
        return abl_fail(err, ABL_EINVAL,
                        "%s: checkpoint damaged: the attributes of /checkpoint or of its "
                        "datasets do not match " ATTR_ALL_ATTRS " (an attribute was changed or "
                        "cannot be read); it cannot be resumed",
                        path);
    return ABL_OK;
}

/* Open a checkpoint for reading: it exists, is HDF5, is an ablasim checkpoint of this format,
 * this build wrote it, and its checksums hold. On success *f and *root are open. */
static abl_status open_checked(const char *path, hid_t *f, hid_t *root, abl_error *err)
{
    *f = *root = -1;
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return abl_fail(err, ABL_EIO, "%s: cannot open checkpoint: %s", path, strerror(errno));
    fclose(probe);
    *f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*f < 0) return h5err(err, path, "reading the checkpoint (not an HDF5 file, or truncated?)");
    int format = 0;
    *root = H5Lexists(*f, "/checkpoint", H5P_DEFAULT) > 0 ? H5Gopen2(*f, "/checkpoint", H5P_DEFAULT)
                                                          : -1;
    if (*root < 0 || get_num(*root, "format", H5T_NATIVE_INT, &format))
        return abl_fail(err, ABL_EINVAL, "%s: not an ablasim checkpoint (no /checkpoint format)",
                        path);
    if (format < CKPT_FORMAT)
        return abl_fail(err, ABL_EINVAL,
                        "%s: written by an older ablasim (checkpoint format %d; this one reads "
                        "format %d: its state layout differs); it cannot be resumed: re-run the "
                        "scenario",
                        path, format, CKPT_FORMAT);
    if (format > CKPT_FORMAT)
        return abl_fail(err, ABL_EINVAL,
                        "%s: written by a newer ablasim (checkpoint format %d; this one reads "
                        "format %d); resume it with the ablasim that wrote it",
                        path, format, CKPT_FORMAT);
    /* another build may step differently (kernels, defaults, source models): the resumed run
     * would not be the run it claims to continue. Checked before the checksums: a future build
     * may checksum differently, and "written by ablasim X" is then the useful message (a
     * damaged version string is refused here all the same). */
    abl_status st = ABL_OK;
    char *ver = get_str(*root, "ablasim_version");
    if (!ver || strcmp(ver, ABLASIM_VERSION))
        st = abl_fail(err, ABL_EINVAL,
                      "%s: written by ablasim %s, this is ablasim %s: a resumed run would not "
                      "continue the same computation; resume it with ablasim %s or re-run the "
                      "scenario",
                      path, ver ? ver : "(unknown)", ABLASIM_VERSION, ver ? ver : "(unknown)");
    free(ver);
    return st ? st : verify_checksums(*f, *root, path, err);
}

/* ---- provenance -------------------------------------------------------------------------- */

/* Absolute spelling of path: realpath() when it exists, else realpath() of its directory + "/" +
 * the last component (an output not written yet), else the current directory + "/" + path.
 * "" stays "". malloc'ed; NULL when out of memory. */
static char *absolute_path(const char *path)
{
    char buf[PATH_MAX], dir[PATH_MAX];
    const char *out = path;
    char *res = NULL;
    if (!path[0])
        out = "";
    else if (realpath(path, buf))
        out = buf;
    else {
        const char *slash = strrchr(path, '/');
        const char *base = slash ? slash + 1 : path;
        if (!slash)
            snprintf(dir, sizeof dir, ".");
        else if (slash == path)
            snprintf(dir, sizeof dir, "/");
        else
            snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        if (realpath(dir, buf)) {
            size_t n = strlen(buf) + strlen(base) + 2;
            if ((res = malloc(n))) snprintf(res, n, "%s/%s", strcmp(buf, "/") ? buf : "", base);
            return res;
        }
        if (path[0] != '/' && getcwd(dir, sizeof dir)) {
            size_t n = strlen(dir) + strlen(path) + 2;
            if ((res = malloc(n))) snprintf(res, n, "%s/%s", dir, path);
            return res;
        }
    }
    if ((res = malloc(strlen(out) + 1))) strcpy(res, out);
    return res;
}

/* The absolute path p as seen from the absolute directory dir ("r.h5", "../in/t.yaml"; "."
 * for dir itself), by whole components. malloc'ed; NULL when out of memory. */
static char *relative_to(const char *dir, const char *p)
{
    size_t i = 0, common = 0;
    while (dir[i] && p[i] && dir[i] == p[i]) {
        if (dir[i] == '/') common = i;
        i++;
    }
    if (!dir[i] && (p[i] == '/' || !p[i])) common = i; /* dir is a whole prefix of p */
    if (!strcmp(dir, "/")) common = 0;
    int ups = 0;
    for (const char *c = dir + common; *c; c++)
        ups += c[0] == '/' && c[1] && c[1] != '/';
    const char *rest = p + common + (p[common] == '/');
    size_t n = 3 * (size_t)ups + strlen(rest) + 2;
    char *r = malloc(n);
    if (!r) return NULL;
    r[0] = '\0';
    for (int k = 0; k < ups; k++) strcat(r, "../");
    strcat(r, rest);
    if (!r[0]) strcpy(r, ".");
    size_t len = strlen(r);
    if (len > 1 && r[len - 1] == '/') r[len - 1] = '\0';
    return r;
}

/* Where a path the checkpoint recorded (abs, written when the checkpoint lay in then_dir) is
 * now that the checkpoint lies in now_dir: the same place relative to the checkpoint.
 * malloc'ed; NULL when out of memory. */
static char *relocated(const char *abs, const char *then_dir, const char *now_dir)
{
    char *rel = relative_to(then_dir, abs);
    if (!rel) return NULL;
    size_t n = strlen(now_dir) + strlen(rel) + 2;
    char *r = malloc(n);
    if (r) snprintf(r, n, "%s/%s", strcmp(now_dir, "/") ? now_dir : "", rel);
    free(rel);
    return r;
}

/* Every numeric property of abl_tissue: the digest covers all of them for each tissue in use
 * (a property the run does not read today may be read by a source tomorrow; listing all keeps
 * this table from silently falling behind the struct). */
static const struct {
    const char *name;
    size_t off;
} tissue_props[] = {
    {"rho_kg_m3", offsetof(abl_tissue, rho_kg_m3)},
    {"c_J_kgK", offsetof(abl_tissue, c_J_kgK)},
    {"k_W_mK", offsetof(abl_tissue, k_W_mK)},
    {"perfusion_per_s", offsetof(abl_tissue, perfusion_per_s)},
    {"q_met_W_m3", offsetof(abl_tissue, q_met_W_m3)},
    {"k_temp_coeff_per_K", offsetof(abl_tissue, k_temp_coeff_per_K)},
    {"sigma_480kHz_S_m", offsetof(abl_tissue, sigma_480kHz_S_m)},
    {"eps_r_915MHz", offsetof(abl_tissue, eps_r_915MHz)},
    {"sigma_915MHz_S_m", offsetof(abl_tissue, sigma_915MHz_S_m)},
    {"eps_r_2450MHz", offsetof(abl_tissue, eps_r_2450MHz)},
    {"sigma_2450MHz_S_m", offsetof(abl_tissue, sigma_2450MHz_S_m)},
    {"frozen_rho_kg_m3", offsetof(abl_tissue, frozen_rho_kg_m3)},
    {"frozen_c_J_kgK", offsetof(abl_tissue, frozen_c_J_kgK)},
    {"frozen_k_W_mK", offsetof(abl_tissue, frozen_k_W_mK)},
    {"water_fraction", offsetof(abl_tissue, water_fraction)},
    {"latent_fusion_J_kg", offsetof(abl_tissue, latent_fusion_J_kg)},
    {"arrhenius_A_per_s", offsetof(abl_tissue, arrhenius_A_per_s)},
    {"arrhenius_Ea_J_mol", offsetof(abl_tissue, arrhenius_Ea_J_mol)},
};
#define NPROP ((int)(sizeof tissue_props / sizeof tissue_props[0]))
/* every field of abl_tissue after the name is one of the doubles above */
_Static_assert(sizeof(abl_tissue) == offsetof(abl_tissue, rho_kg_m3) + NPROP * sizeof(double),
               "abl_tissue gained a field: add it to tissue_props");

/* The properties the run uses: one row per material (its tissue after the scenario's
 * overrides), then a row "blood" (rho, c of the perfusing blood; the rest NaN). names: the
 * row names, each followed by '\n'. */
typedef struct {
    int nrow;
    double *v; /* [nrow][NPROP] */
    char *names;
    uint64_t digest;
} tissue_rows;

static void tissue_rows_free(tissue_rows *r)
{
    free(r->v);
    free(r->names);
}

static int tissue_rows_build(const abl_sim_view *s, tissue_rows *r)
{
    const abl_tissue_table *tab = &s->sc->tissues;
    r->nrow = s->nmat + 1;
    r->v = malloc((size_t)r->nrow * NPROP * sizeof *r->v);
    r->names = malloc((size_t)r->nrow * (ABL_TISSUE_NAME_LEN + 1) + 1);
    if (!r->v || !r->names) return -1;
    r->names[0] = 0;
    size_t pos = 0;
    for (int m = 0; m < s->nmat; m++) {
        const abl_tissue *t = &tab->t[s->mat_tissue[m]];
        for (int q = 0; q < NPROP; q++)
            memcpy(&r->v[m * NPROP + q], (const char *)t + tissue_props[q].off, sizeof(double));
        pos += (size_t)sprintf(r->names + pos, "%s\n", t->name);
    }
    double *b = &r->v[s->nmat * NPROP];
    for (int q = 0; q < NPROP; q++)
        b[q] = NAN;
    b[0] = tab->blood_rho_kg_m3;
    b[1] = tab->blood_c_J_kgK;
    sprintf(r->names + pos, "blood\n");
    uint64_t h = hash_piece(HASH_SEED, r->names, strlen(r->names));
    r->digest = hash_finish(hash_piece(h, r->v, (size_t)r->nrow * NPROP * sizeof *r->v));
    return 0;
}

/* Digest of the voxel materials as built by sim_create (mesh labels, NIfTI, shapes) and of the
 * grid's dimensions. */
static uint64_t material_digest(const abl_sim_view *s)
{
    const int dims[3] = {s->grid.nx, s->grid.ny, s->grid.nz};
    uint64_t h = hash_piece(HASH_SEED, dims, sizeof dims);
    return hash_finish(hash_piece(h, s->material, s->grid.n));
}

/* The inputs a resume reloads from disk besides the tissue table and the mesh labels (found by
 * an adversarial review, session 23: each could change between a stop and its resume, and the
 * resumed run finished a different run, exit 0). Each is a separate attribute, absent in
 * checkpoints written before (then not checked):
 *  - grid_geometry_digest_u64: the grid's spacing and origin (a mesh moved or rescaled with
 *    the same labels);
 *  - initial_field_digest_u64: the initial temperature field or state maps as loaded;
 *  - devices_digest_u64: the device presets file's bytes as the scenario read them when a
 *    source names a preset (abl_scenario.devices_digest; 0 otherwise). */
static uint64_t geometry_digest(const abl_sim_view *s)
{
    uint64_t h = hash_piece(HASH_SEED, s->grid.h_m, sizeof s->grid.h_m);
    return hash_finish(hash_piece(h, s->grid.origin_m, sizeof s->grid.origin_m));
}

static uint64_t field_piece(uint64_t h, const abl_field_file *f, size_t n)
{
    const unsigned char present = f->values != NULL;
    h = hash_piece(h, &present, 1);
    return present ? hash_piece(h, f->values, n * sizeof *f->values) : h;
}

static uint64_t initial_digest(const abl_scenario *sc, size_t n)
{
    uint64_t h = field_piece(HASH_SEED, &sc->initial_T, n);
    if (sc->initial_is_state) {
        for (int m = 0; m < ABL_INITIAL_MAPS; m++) h = field_piece(h, &sc->initial_maps[m], n);
        h = field_piece(h, &sc->initial_applicator, n);
        for (int t = 0; t < sc->n_hot; t++) h = field_piece(h, &sc->initial_hot[t], n);
        for (int t = 0; t < sc->n_cold; t++) h = field_piece(h, &sc->initial_cold[t], n);
        h = field_piece(h, &sc->initial_freeze_cycles, n);
        h = field_piece(h, &sc->initial_frozen_state, n);
    }
    return hash_finish(h);
}

/* Row r of a '\n'-separated name list into buf. */
static void row_name(const char *names, int r, char *buf, size_t len)
{
    const char *p = names;
    for (int i = 0; i < r && p; i++) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    size_t n = p ? strcspn(p, "\n") : 0;
    snprintf(buf, len, "%.*s", (int)n, p ? p : "");
}

/* The tissue properties now against the checkpoint's: name the first that changed. */
static abl_status check_tissues(hid_t f, hid_t root, const abl_sim_view *s, const char *path,
                                abl_error *err)
{
    tissue_rows now = {0};
    if (tissue_rows_build(s, &now)) {
        tissue_rows_free(&now);
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    }
    uint64_t was = 0;
    abl_status st = ABL_OK;
    if (get_num(root, "tissue_digest_u64", H5T_NATIVE_UINT64, &was)) {
        st = abl_fail(err, ABL_EINVAL, "%s: checkpoint incomplete (no tissue_digest_u64)", path);
    } else if (was != now.digest) {
        /* find what changed: the stored rows (checksummed) against the current ones */
        long long n = array_length(f, "/checkpoint/tissue_properties");
        double *v = n > 0 ? malloc((size_t)n * sizeof *v) : NULL;
        hid_t d = H5Lexists(f, "/checkpoint/tissue_properties", H5P_DEFAULT) > 0
                      ? H5Dopen2(f, "/checkpoint/tissue_properties", H5P_DEFAULT)
                      : -1;
        char *names = d >= 0 ? get_str(d, "tissues") : NULL;
        close_id(d);
        const char *tpath = s->sc->tissues_path ? s->sc->tissues_path : "(none)";
        if (!v || !names ||
            get_array(f, "/checkpoint/tissue_properties", H5T_NATIVE_DOUBLE, (hsize_t)n, v)) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: the tissue properties differ from the checkpoint's: the tissue "
                          "table %s changed since the checkpoint; it cannot be resumed",
                          path, tpath);
        } else if (strcmp(names, now.names) || n != (long long)now.nrow * NPROP) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: the tissues in use differ from the checkpoint's (the tissue table "
                          "%s or the grid changed since the checkpoint); it cannot be resumed",
                          path, tpath);
        } else {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: the tissue properties differ from the checkpoint's: the tissue "
                          "table %s changed since the checkpoint; it cannot be resumed",
                          path, tpath);
            for (int i = 0; i < now.nrow * NPROP; i++)
                if (memcmp(&v[i], &now.v[i], sizeof(double))) {
                    char tn[ABL_TISSUE_NAME_LEN + 1], a[32], b[32];
                    row_name(names, i / NPROP, tn, sizeof tn);
                    /* as the table would write them; all digits only if that hides the change */
                    snprintf(a, sizeof a, "%.15g", now.v[i]);
                    snprintf(b, sizeof b, "%.15g", v[i]);
                    if (!strcmp(a, b)) {
                        snprintf(a, sizeof a, "%.17g", now.v[i]);
                        snprintf(b, sizeof b, "%.17g", v[i]);
                    }
                    st = abl_fail(err, ABL_EINVAL,
                                  "%s: tissue '%s': %s is %s now, %s when the checkpoint was "
                                  "written: the tissue table %s changed since the checkpoint; "
                                  "it cannot be resumed (re-run, or restore the table)",
                                  path, tn, tissue_props[i % NPROP].name, a, b, tpath);
                    break;
                }
        }
        free(v);
        free(names);
    }
    tissue_rows_free(&now);
    return st;
}

/* ---- state checks ------------------------------------------------------------------------- */

/* First value of v (n of them) outside [lo, hi] or NaN; n when none. */
static size_t first_bad_d(const double *v, size_t n, double lo, double hi)
{
    for (size_t c = 0; c < n; c++)
        if (!(v[c] >= lo && v[c] <= hi)) return c;
    return n;
}

static size_t first_bad_f(const float *v, size_t n, double lo, double hi)
{
    for (size_t c = 0; c < n; c++)
        if (!(v[c] >= lo && v[c] <= hi)) return c;
    return n;
}

static abl_status bad_voxel(const char *path, const abl_grid *g, const char *field, size_t c,
                            double value, const char *allowed, abl_error *err)
{
    const size_t k = c / g->sz, j = (c % g->sz) / g->sy, i = c % g->sy;
    return abl_fail(err, ABL_EINVAL,
                    "%s: checkpoint state invalid: %s at voxel %zu (i %zu, j %zu, k %zu) is %.17g "
                    "(allowed: %s); it cannot be resumed",
                    path, field, c, i, j, k, value, allowed);
}

/* Finiteness and range of the loaded state, before the run uses any of it. The bounds are
 * what the time loop itself guarantees: temperatures inside the monitor's runaway limits,
 * T_min <= T <= T_max (the running maps are updated at the end of every sim_step call, and
 * checkpoints are taken between calls), non-negative finite damage and dose, time maps within
 * the elapsed time (float sums of the monitor intervals: each addition rounds by at most half
 * an ulp of a sum <= t, so (1 + 2 (step + 1) 2^-24) t bounds the accumulated error), finite
 * non-negative freeze counts, masks 0 or 1. */
static abl_status check_state(const abl_sim *s, const char *path, abl_error *err)
{
    const abl_grid *g = &s->grid;
    const size_t n = g->n;
    size_t c;
    const double t = s->t_s; /* restored before this check */
    const double tmax = t * (1.0 + 2.0 * ((double)s->step + 1.0) * 0x1p-24);
    char elapsed[96];
    snprintf(elapsed, sizeof elapsed, "finite, 0..%.17g s (the time elapsed)", tmax);
    for (int i = 0; i < s->nfields; i++) {
        const abl_field *f = &s->fields[i];
        if (!(f->def->flags & ABL_FIELD_CHECKPOINT)) continue;
        const void *v = field_data(f);
        double lo = 0, hi = DBL_MAX;
        const char *allowed = "finite, >= 0";
        switch (f->def->range) {
        case ABL_RANGE_TEMPERATURE:
            lo = -273.15, hi = 1e4, allowed = "finite, -273.15..10000 C";
            break;
        case ABL_RANGE_NONNEG: hi = f->def->dtype == ABL_DT_F32 ? FLT_MAX : DBL_MAX; break;
        case ABL_RANGE_ELAPSED: hi = tmax, allowed = elapsed; break;
        case ABL_RANGE_FLAG: hi = 1, allowed = "0 or 1"; break;
        }
        double bad = 0;
        if (f->def->range == ABL_RANGE_ELAPSED && f->state_start) {
            /* a time map continued from an initial state: its start (the first run's time,
             * rounded once to the map's type) plus this run's elapsed time (found by an
             * adversarial review, session 23: every such run's checkpoint was refused) */
            const double rel = 1.0 + 2.0 * ((double)s->step + 2.0) * 0x1p-24;
            char allowed_c[160];
            for (c = 0; c < n; c++) {
                const double x = f->def->dtype == ABL_DT_F32 ? (double)((const float *)v)[c]
                                                              : ((const double *)v)[c];
                const double hi_c = (f->state_start[c] + t) * rel;
                if (!(x >= 0.0 && x <= hi_c)) {
                    snprintf(allowed_c, sizeof allowed_c,
                             "finite, 0..%.17g s (the initial state's %.17g s + the time "
                             "elapsed)",
                             hi_c, f->state_start[c]);
                    return bad_voxel(path, g, f->state_name, c, x, allowed_c, err);
                }
            }
            continue;
        }
        switch (f->def->dtype) {
        case ABL_DT_F64:
            if ((c = first_bad_d(v, n, lo, hi)) < n) bad = ((const double *)v)[c];
            break;
        case ABL_DT_F32:
            if ((c = first_bad_f(v, n, lo, hi)) < n) bad = ((const float *)v)[c];
            break;
        default:
            for (c = 0; c < n && ((const uint8_t *)v)[c] <= hi; c++) {}
            if (c < n) bad = ((const uint8_t *)v)[c];
            break;
        }
        if (c < n) return bad_voxel(path, g, f->state_name, c, bad, allowed, err);
    }
    for (c = 0; c < n; c++)
        if (!(s->T_min[c] <= s->T[c] && s->T[c] <= s->T_max[c])) {
            char allowed[160];
            snprintf(allowed, sizeof allowed, "T_min_C %.17g <= T_C <= T_max_C %.17g", s->T_min[c],
                     s->T_max[c]);
            return bad_voxel(path, g, "T_C", c, s->T[c], allowed, err);
        }
    return ABL_OK;
}

/* Dataset of source i's state blob (source.h state_io) in /state. */
static void source_blob_name(char *buf, size_t len, int i)
{
    snprintf(buf, len, "/state/source_%d", i);
}

/* Save every stateful source (state_io) as a uint8 dataset with its name as an attribute. */
static abl_status write_source_states(hid_t f, const abl_sim_view *s, const char *tmp,
                                      abl_error *err)
{
    for (int i = 0; i < s->nsources; i++) {
        const abl_source *src = s->sources[i];
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
        if (!buf)
            st = abl_fail(err, ABL_ENOMEM, "out of memory restoring source '%s'", src->name);
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

/* The run log (probes, zone growth, source power; runlog.h) as the blob /state/runlog, so a
 * resumed run keeps its whole history. */
static abl_status write_runlog(hid_t f, const abl_sim_view *s, const char *tmp, abl_error *err)
{
    if (!s->runlog) return ABL_OK;
    const abl_runlog *log = s->runlog;
    abl_blob b = {ABL_BLOB_COUNT, NULL, 0, 0, false};
    abl_status st = runlog_state_save(log, &b, err);
    if (st) return st;
    const size_t len = b.pos;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) return abl_fail(err, ABL_ENOMEM, "out of memory saving the run log");
    b = (abl_blob){ABL_BLOB_SAVE, buf, len, 0, false};
    st = runlog_state_save(log, &b, err);
    if (st == ABL_OK && b.pos != len)
        st = abl_fail(err, ABL_EINTERNAL, "the run log took %zu bytes to count but %zu to save",
                      len, b.pos);
    if (st == ABL_OK &&
        put_array(f, "/state/runlog", H5T_STD_U8LE, H5T_NATIVE_UINT8, (hsize_t)len, buf))
        st = h5err(err, tmp, "writing the run log to the checkpoint");
    free(buf);
    return st;
}

static abl_status read_runlog(hid_t f, abl_sim *s, const char *path, abl_error *err)
{
    if (!s->runlog) return ABL_OK;
    if (H5Lexists(f, "/state/runlog", H5P_DEFAULT) <= 0)
        return abl_fail(err, ABL_EINVAL,
                        "%s: the checkpoint holds no run log (probes, zone growth); it was "
                        "written for another scenario",
                        path);
    hid_t d = H5Dopen2(f, "/state/runlog", H5P_DEFAULT);
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    close_id(sp);
    unsigned char *buf = n >= 0 ? malloc(n ? (size_t)n : 1) : NULL;
    abl_status st = ABL_OK;
    if (d < 0 || n < 0) st = h5err(err, path, "opening the run log");
    else if (!buf) st = abl_fail(err, ABL_ENOMEM, "out of memory restoring the run log");
    else if (n && H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        st = h5err(err, path, "reading the run log");
    close_id(d);
    if (st == ABL_OK) {
        abl_blob b = {ABL_BLOB_LOAD, buf, (size_t)n, 0, false};
        st = runlog_state_io(s->runlog, &b, err);
        if (st == ABL_OK && (b.bad || b.pos != b.len))
            st = abl_fail(err, ABL_EINVAL,
                          "%s: the checkpointed run log (%lld bytes) does not fit the run as "
                          "created now: the scenario changed since",
                          path, (long long)n);
    }
    free(buf);
    return st;
}

/* realpath() of an existing path, else the path as given (malloc'ed). */
static char *real_or_given(const char *path)
{
    char buf[PATH_MAX];
    const char *p = realpath(path, buf) ? buf : path;
    char *r = malloc(strlen(p) + 1);
    if (r) strcpy(r, p);
    return r;
}

abl_status checkpoint_write(const char *path, const abl_sim_view *s, const char *output_path,
                            long snapshots_written, const char *part_id, abl_error *err)
{
    const abl_scenario *sc = s->sc;
    /* a fresh "<path>.tmp" (atomic_file.h), renamed over the previous checkpoint when whole */
    abl_atomic at;
    int e = atomic_reserve(&at, path, ".tmp");
    if (e) {
        abl_status st = abl_fail(err, ABL_EIO, "%s.tmp: cannot create the checkpoint (%s)", path,
                                 strerror(e));
        atomic_abort(&at);
        return st;
    }
    const char *tmp = at.tmp;
    h5_quiet q;
    quiet_begin(&q);
    abl_status st = ABL_OK;
    hid_t fapl = h5_fapl_write(), f = -1, root = -1, grp = -1, td = -1;
    /* provenance: absolute paths (a resume may start in another directory), what the run was
     * built from (tissue properties in use, voxel materials) */
    char *spath = real_or_given(sc->path), *bdir = absolute_path(sc->base_dir);
    char *tpath = absolute_path(sc->tissues_path ? sc->tissues_path : "");
    char *mpath = absolute_path(sc->mesh_path ? sc->mesh_path : "");
    char *opath = absolute_path(output_path ? output_path : "");
    /* the checkpoint's own directory: a resume of a copied or moved checkpoint finds its output
     * (and, when moved, its inputs) at the same place relative to it (an adversarial test,
     * session 29: a copy's resume finished the original directory's run) */
    char *cpath = absolute_path(path), *cdir = cpath ? fg_dirname(cpath) : NULL;
    char *sets = NULL;
    tissue_rows tr = {0};
    if (!spath || !bdir || !tpath || !mpath || !opath || !cdir || tissue_rows_build(s, &tr)) {
        st = abl_fail(err, ABL_ENOMEM, "out of memory");
        goto done;
    }
    if (fapl < 0 || (f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0) {
        st = h5err(err, tmp, "creating the checkpoint");
        goto done;
    }
    /* the scenario as loaded, the loop counters, the bookkeeping */
    size_t setlen = 1;
    for (int i = 0; i < sc->nsets; i++)
        setlen += strlen(sc->sets[i]) + 1;
    if (!(sets = calloc(setlen, 1))) {
        st = abl_fail(err, ABL_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < sc->nsets; i++) {
        strcat(sets, sc->sets[i]);
        strcat(sets, "\n");
    }
    const int format = CKPT_FORMAT;
    const long long step = s->step, nsnap = snapshots_written, ncg = (long long)s->n_cg;
    /* the multirate step's counts of the run so far (the summary's; a resumed run reported
     * only its own part: QA, session 29) */
    const long long mr_long = s->mr_long_steps, mr_early = s->mr_early_ends;
    const long long seg_steps = s->seg_steps;
    const long long nvox = (long long)s->grid.n;
    const hsize_t nrows = (hsize_t)s->grid.ny * (hsize_t)s->grid.nz;
    const uint64_t mdig = material_digest(s);
    const uint64_t gdig = geometry_digest(s), idig = initial_digest(sc, s->grid.n),
                   ddig = sc->devices_digest;
    root = H5Gcreate2(f, "/checkpoint", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int bad =
        root < 0 || put_num(root, "format", H5T_NATIVE_INT, &format) ||
        put_str(root, "ablasim_version", ABLASIM_VERSION) ||
        put_str(root, "scenario_path", spath) || put_str(root, "scenario_base_dir", bdir) ||
        put_str(root, "scenario_file_text", sc->file_text) || put_str(root, "sets", sets) ||
        put_str(root, "output_path", opath) || put_str(root, "checkpoint_dir", cdir) ||
        put_str(root, "tissues_path", tpath) ||
        put_str(root, "mesh_path", mpath) || h5_attr_u64(root, "tissue_digest_u64", tr.digest) ||
        h5_attr_u64(root, "material_digest_u64", mdig) ||
        h5_attr_u64(root, "grid_geometry_digest_u64", gdig) ||
        h5_attr_u64(root, "initial_field_digest_u64", idig) ||
        h5_attr_u64(root, "devices_digest_u64", ddig) ||
        put_num(root, "step", H5T_NATIVE_LLONG, &step) ||
        put_num(root, "segment_start_s", H5T_NATIVE_DOUBLE, &s->seg_t0_s) ||
        put_num(root, "segment_steps", H5T_NATIVE_LLONG, &seg_steps) ||
        put_num(root, "voxels", H5T_NATIVE_LLONG, &nvox) ||
        put_num(root, "snapshots_written", H5T_NATIVE_LLONG, &nsnap) ||
        (part_id && part_id[0] && put_str(root, "output_part_id", part_id)) ||
        put_num(root, "solves", H5T_NATIVE_LLONG, &ncg) ||
        put_num(root, "multirate_long_steps", H5T_NATIVE_LLONG, &mr_long) ||
        put_num(root, "multirate_early_ends", H5T_NATIVE_LLONG, &mr_early) ||
        put_num(root, "dt_s", H5T_NATIVE_DOUBLE, &s->dt_s) ||
        put_num(root, "monitor_accum_s", H5T_NATIVE_DOUBLE, &s->monitor_accum_s) ||
        (s->region_known &&
         (put_array(root, "active_region_box", H5T_STD_I32LE, H5T_NATIVE_INT, 6, s->region_box) ||
          put_array(root, "active_region_span_lo", H5T_STD_I32LE, H5T_NATIVE_INT32, nrows,
                    s->region_span_lo) ||
          put_array(root, "active_region_span_hi", H5T_STD_I32LE, H5T_NATIVE_INT32, nrows,
                    s->region_span_hi))) ||
        put_num(root, "wall_s", H5T_NATIVE_DOUBLE, &s->wall_s) ||
        put_num(root, "E_stored_initial_J", H5T_NATIVE_DOUBLE, &s->energy.E_stored_initial_J) ||
        put_num(root, "E_sources_J", H5T_NATIVE_DOUBLE, &s->energy.E_sources_J) ||
        put_num(root, "E_perf_met_J", H5T_NATIVE_DOUBLE, &s->energy.E_perf_met_J) ||
        put_num(root, "E_boundary_in_J", H5T_NATIVE_DOUBLE, &s->energy.E_boundary_in_J);
    /* the tissue properties themselves, so that a refusal can name the one that changed */
    if (!bad) {
        char props[NPROP * 24] = "";
        for (int q = 0; q < NPROP; q++) {
            strcat(props, tissue_props[q].name);
            strcat(props, "\n");
        }
        bad = put_array(root, "tissue_properties", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                        (hsize_t)tr.nrow * NPROP, tr.v) ||
              (td = H5Dopen2(root, "tissue_properties", H5P_DEFAULT)) < 0 ||
              put_str(td, "tissues", tr.names) || put_str(td, "properties", props);
    }
    if (bad) {
        st = h5err(err, tmp, "writing the checkpoint attributes");
        goto done;
    }
    grp = H5Gcreate2(f, "/state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    /* every map of the field table marked for checkpoints (fields.h) */
    for (int i = 0; i < s->nfields && !bad; i++) {
        const abl_field *fd = &s->fields[i];
        if (fd->def->flags & ABL_FIELD_CHECKPOINT)
            bad = grp < 0 || put_array(grp, fd->state_name, h5_dtype_file(fd->def->dtype),
                                       h5_dtype_mem(fd->def->dtype), s->grid.n, field_data(fd));
    }
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
    if ((st = write_runlog(f, s, tmp, err))) goto done;
    /* last: the digest of every attribute written above */
    uint64_t adig = 0;
    if (attributes_digest(f, &adig) || h5_attr_u64(root, ATTR_ALL_ATTRS, adig)) {
        st = h5err(err, tmp, "writing the checkpoint's attribute checksum");
        goto done;
    }
    close_id(td);
    close_id(grp);
    close_id(root);
    td = grp = root = -1;
    if (H5Fclose(f) < 0) {
        f = -1;
        st = h5err(err, tmp, "closing the checkpoint");
        goto done;
    }
    f = -1;
    /* on disk before it replaces the previous checkpoint: a crash right after the rename must
     * not leave a checkpoint whose blocks were never written */
    if ((e = atomic_sync(&at)))
        st = abl_fail(err, ABL_EIO, "%s: cannot flush the checkpoint to disk (%s)", tmp,
                      strerror(e));
    else if ((e = atomic_commit(&at)))
        st = abl_fail(err, ABL_EIO, "%s: cannot rename the checkpoint into place (%s)", path,
                      strerror(e));
done:
    close_id(td);
    close_id(grp);
    close_id(root);
    close_id(f);
    close_id(fapl);
    quiet_end(&q);
    atomic_abort(&at); /* removes the temporary unless it was renamed */
    free(sets);
    free(spath);
    free(bdir);
    free(tpath);
    free(mpath);
    free(opath);
    free(cpath);
    free(cdir);
    tissue_rows_free(&tr);
    return st;
}

void checkpoint_info_free(abl_checkpoint_info *info)
{
    free(info->output_path);
    info->output_path = NULL;
}

/* An input the checkpoint was made from must still be where it was (the scenario is rebuilt
 * from it); say which one is gone rather than letting the scenario reader fail on a path the
 * user never typed. */
static abl_status check_input(const char *ckpt, const char *what, const char *p, abl_error *err)
{
    struct stat sb;
    if (!p || !p[0] || stat(p, &sb) == 0) return ABL_OK;
    return abl_fail(err, ABL_EIO,
                    "%s: the %s the checkpoint was made from, %s, does not exist any more (%s); "
                    "put it back there to resume, or re-run the scenario",
                    ckpt, what, p, strerror(errno));
}

/* The run is rebuilt from the scenario text stored in the checkpoint. If the scenario file is
 * still where it was and now says something else, resuming would silently finish the old
 * scenario under a file that describes another one: refuse, and say so. (A scenario file that
 * was moved or deleted is fine: the stored text is the whole scenario.) */
static abl_status check_scenario_text(const char *path, const char *spath, const char *text,
                                      abl_error *err)
{
    FILE *f = fopen(spath, "rb");
    if (!f) return ABL_OK;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return ABL_OK;
    }
    const size_t n = strlen(text);
    bool same = (size_t)sb.st_size == n;
    char buf[65536];
    size_t off = 0;
    while (same) {
        size_t r = fread(buf, 1, sizeof buf, f);
        if (r == 0) break;
        same = off + r <= n && memcmp(buf, text + off, r) == 0;
        off += r;
    }
    same = same && off == n;
    fclose(f);
    if (same) return ABL_OK;
    return abl_fail(err, ABL_EINVAL,
                    "%s: the scenario file %s changed since the checkpoint was written; the "
                    "checkpoint continues the scenario as it was then. Restore the file (the "
                    "checkpoint holds its text: attribute /checkpoint/scenario_file_text), or "
                    "start a new run of the changed scenario",
                    path, spath);
}

abl_status checkpoint_load_scenario(const char *path, abl_scenario **sc, abl_checkpoint_info *info,
                                    abl_error *err)
{
    return checkpoint_load_scenario_sets(path, NULL, 0, sc, info, err);
}

abl_status checkpoint_load_scenario_sets(const char *path, const char *const *extra, int nextra,
                                         abl_scenario **sc, abl_checkpoint_info *info,
                                         abl_error *err)
{
    *sc = NULL;
    memset(info, 0, sizeof *info);
    h5_quiet q;
    quiet_begin(&q);
    char *spath = NULL, *text = NULL, *sets = NULL, *dir = NULL, **list = NULL;
    char *tpath = NULL, *mpath = NULL;
    hid_t f = -1, root = -1;
    long long nsnap = 0;
    abl_status st = open_checked(path, &f, &root, err);
    if (st) goto done;
    spath = get_str(root, "scenario_path");
    text = get_str(root, "scenario_file_text");
    sets = get_str(root, "sets");
    dir = get_str(root, "scenario_base_dir");
    tpath = get_str(root, "tissues_path");
    mpath = get_str(root, "mesh_path");
    info->output_path = get_str(root, "output_path");
    if (!spath || !text || !sets || !dir || !tpath || !mpath || !info->output_path ||
        get_num(root, "snapshots_written", H5T_NATIVE_LLONG, &nsnap)) {
        st =
            abl_fail(err, ABL_EIO, "%s: checkpoint incomplete (scenario attributes missing)", path);
        goto done;
    }
    {
        /* A checkpoint copied or moved since it was written (checkpoint_dir, absent before
         * session 29). Its output: where it was relative to the checkpoint when the partial
         * result (.part) is there (a copy's resume finished the original's run: the copy's
         * .part was orphaned and the original's consumed; a moved run directory could not be
         * resumed), else where it was recorded (a checkpoint moved alone, an output directory
         * reached through a symbolic link: a review). Inputs: where they were recorded while
         * they are there (a copy reads them there, their digests checked as always), else
         * relative to the checkpoint when they are there (moved with it); else the recorded
         * path stays, and the message names it. */
        char *then = get_str(root, "checkpoint_dir");
        char *cabs = absolute_path(path), *now = cabs ? fg_dirname(cabs) : NULL;
        if (then && now && strcmp(then, now)) {
            char **paths[] = {&info->output_path, &dir, &tpath, &mpath};
            for (int k = 0; k < 4 && !st; k++) {
                if (!(*paths[k])[0] || (*paths[k])[0] != '/') continue;
                char *r = relocated(*paths[k], then, now);
                char *rp = r ? malloc(strlen(r) + 6) : NULL;
                if (!r || !rp) {
                    free(r);
                    st = abl_fail(err, ABL_ENOMEM, "out of memory");
                    break;
                }
                struct stat sb;
                sprintf(rp, "%s.part", r);
                const bool take = k == 0 ? stat(rp, &sb) == 0
                                         : stat(*paths[k], &sb) != 0 && stat(r, &sb) == 0;
                free(rp);
                if (take) {
                    free(*paths[k]);
                    *paths[k] = r;
                } else {
                    free(r);
                }
            }
        }
        free(then);
        free(cabs);
        free(now);
        if (st) goto done;
    }
    if (nsnap < 0 || nsnap > LONG_MAX) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: checkpoint state invalid: snapshots_written is %lld; it cannot be "
                      "resumed",
                      path, nsnap);
        goto done;
    }
    info->snapshots_written = (long)nsnap;
    {
        /* the id of the partial result this checkpoint refers to (absent before session 22) */
        char *pid = get_str(root, "output_part_id");
        snprintf(info->part_id, sizeof info->part_id, "%s", pid ? pid : "");
        free(pid);
    }
    if ((st = check_input(path, "tissue table", tpath, err)) ||
        (st = check_input(path, "mesh file", mpath, err)) ||
        (st = check_scenario_text(path, spath, text, err)))
        goto done;
    int nsets = 0;
    for (char *p = sets; *p; p++)
        nsets += *p == '\n';
    list = calloc((size_t)nsets + (size_t)(nextra > 0 ? nextra : 0) + 1, sizeof *list);
    if (!list) {
        st = abl_fail(err, ABL_ENOMEM, "out of memory");
        goto done;
    }
    nsets = 0;
    for (char *p = strtok(sets, "\n"); p; p = strtok(NULL, "\n"))
        list[nsets++] = p;
    for (int k = 0; k < nextra; k++) list[nsets++] = (char *)extra[k];
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
    free(tpath);
    free(mpath);
    if (st) checkpoint_info_free(info);
    return st;
}

abl_status checkpoint_restore(const char *path, abl_sim *s, abl_error *err)
{
    h5_quiet q;
    quiet_begin(&q);
    hid_t f = -1, root = -1, grp = -1;
    long long step = 0, nvox = 0, ncg = 0, seg_steps = 0;
    double dt = 0, accum = 0, wall = 0, seg_t0 = 0;
    uint64_t mdig = 0;
    abl_energy e = s->energy;
    abl_status st = open_checked(path, &f, &root, err);
    if (st) goto done;
    grp = H5Lexists(f, "/state", H5P_DEFAULT) > 0 ? H5Gopen2(f, "/state", H5P_DEFAULT) : -1;
    if (grp < 0 || get_num(root, "step", H5T_NATIVE_LLONG, &step) ||
        get_num(root, "segment_start_s", H5T_NATIVE_DOUBLE, &seg_t0) ||
        get_num(root, "segment_steps", H5T_NATIVE_LLONG, &seg_steps) ||
        get_num(root, "voxels", H5T_NATIVE_LLONG, &nvox) ||
        get_num(root, "solves", H5T_NATIVE_LLONG, &ncg) ||
        get_num(root, "dt_s", H5T_NATIVE_DOUBLE, &dt) ||
        get_num(root, "material_digest_u64", H5T_NATIVE_UINT64, &mdig) ||
        get_num(root, "monitor_accum_s", H5T_NATIVE_DOUBLE, &accum) ||
        get_num(root, "wall_s", H5T_NATIVE_DOUBLE, &wall) ||
        get_num(root, "E_stored_initial_J", H5T_NATIVE_DOUBLE, &e.E_stored_initial_J) ||
        get_num(root, "E_sources_J", H5T_NATIVE_DOUBLE, &e.E_sources_J) ||
        get_num(root, "E_perf_met_J", H5T_NATIVE_DOUBLE, &e.E_perf_met_J) ||
        get_num(root, "E_boundary_in_J", H5T_NATIVE_DOUBLE, &e.E_boundary_in_J)) {
        st = h5err(err, path, "reading the checkpoint state");
        goto done;
    }
    /* provenance first: a changed tissue table or mesh also changes dt or the voxel count,
     * and the specific cause is the useful message */
    const abl_sim_view v = sim_view(s);
    if ((st = check_tissues(f, root, &v, path, err))) goto done;
    if ((size_t)nvox != s->grid.n || mdig != material_digest(&v)) {
        char what[96] = "its voxel materials differ";
        if ((size_t)nvox != s->grid.n)
            snprintf(what, sizeof what, "%lld voxels then, %zu now", nvox, s->grid.n);
        if (s->sc->mesh_path)
            st = abl_fail(err, ABL_EINVAL,
                          "%s: the mesh file %s changed since the checkpoint (%s); it cannot be "
                          "resumed: re-run the scenario",
                          path, s->sc->mesh_path, what);
        else
            st = abl_fail(err, ABL_EINVAL,
                          "%s: the voxel materials differ from the checkpoint's (%lld voxels "
                          "then, %zu now): the grid is built differently; it cannot be resumed",
                          path, nvox, s->grid.n);
        goto done;
    }
    {
        uint64_t was;
        const abl_scenario *sc = s->sc;
        if (!get_num(root, "grid_geometry_digest_u64", H5T_NATIVE_UINT64, &was) &&
            was != geometry_digest(&v)) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: the grid's spacing or origin differs from the checkpoint's (%s); "
                          "it cannot be resumed: re-run the scenario",
                          path,
                          sc->mesh_path ? "the mesh file was moved or rescaled" : "grid keys");
            goto done;
        }
        if (!get_num(root, "initial_field_digest_u64", H5T_NATIVE_UINT64, &was) &&
            was != initial_digest(sc, s->grid.n)) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: the initial %s %s changed since the checkpoint; the run started "
                          "from the old one, so it cannot be resumed: restore it or re-run",
                          path, sc->initial_is_state ? "state" : "temperature field",
                          sc->initial_T_path ? sc->initial_T_path : "(none now)");
            goto done;
        }
        if (!get_num(root, "devices_digest_u64", H5T_NATIVE_UINT64, &was) &&
            was != sc->devices_digest) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: the device presets file %s changed since the checkpoint (a "
                          "source's preset may differ); it cannot be resumed: restore it or "
                          "re-run",
                          path, sc->devices_path ? sc->devices_path : "(none)");
            goto done;
        }
    }
    if (dt != s->dt_s) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: the checkpoint's time step (%.17g s) differs from the scenario's as "
                      "loaded now (%.17g s): the scenario, the tissue table or the ablasim version (its "
                      "step rule) changed since; rerun from the start",
                      path, dt, s->dt_s);
        goto done;
    }
    /* time: the last breakpoint landed on (0 or one of the run's breakpoints, exactly) plus
     * whole steps since (sim.h step-aligned time) */
    const long long nsteps = s->nsteps_total;
    bool seg_ok = seg_t0 == 0.0;
    for (size_t i = 0; i < s->n_bp && !seg_ok; i++) seg_ok = s->bp_s[i] == seg_t0;
    const double t_ck = seg_t0 + (double)seg_steps * dt;
    if (!seg_ok || seg_steps < 0 || seg_steps > step || !(t_ck <= s->sc->duration_s)) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: checkpoint state invalid: time %.17g s + %lld steps is not a time this "
                      "run reaches (breakpoints of the scenario, within %g s); it cannot be "
                      "resumed",
                      path, seg_t0, seg_steps, s->sc->duration_s);
        goto done;
    }
    if (step < 0 || step > nsteps || ncg < 0 || !(wall >= 0 && wall <= DBL_MAX) ||
        !(accum >= 0 && accum <= t_ck) || !isfinite(e.E_stored_initial_J) ||
        !isfinite(e.E_sources_J) || !isfinite(e.E_perf_met_J) || !isfinite(e.E_boundary_in_J)) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: checkpoint state invalid: step %lld of %lld, %lld solves, wall time "
                      "%g s, monitor interval %g s, energies %g %g %g %g J (allowed: step "
                      "0..%lld, solves >= 0, finite non-negative times, finite energies); it "
                      "cannot be resumed",
                      path, step, nsteps, ncg, wall, accum, e.E_stored_initial_J, e.E_sources_J,
                      e.E_perf_met_J, e.E_boundary_in_J, nsteps);
        goto done;
    }
    for (int i = 0; i < s->nfields; i++) {
        const abl_field *fd = &s->fields[i];
        if (!(fd->def->flags & ABL_FIELD_CHECKPOINT)) continue;
        if (get_array(grp, fd->state_name, h5_dtype_mem(fd->def->dtype), s->grid.n, field_data(fd))) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: the checkpoint has no field /state/%s of %zu voxels (written for "
                          "another scenario?); it cannot be resumed",
                          path, fd->state_name, s->grid.n);
            goto done;
        }
    }
    /* the multirate counts so far (absent in checkpoints before session 29: counted from 0) */
    long long mr_long = 0, mr_early = 0;
    if (get_num(root, "multirate_long_steps", H5T_NATIVE_LLONG, &mr_long)) mr_long = 0;
    if (get_num(root, "multirate_early_ends", H5T_NATIVE_LLONG, &mr_early)) mr_early = 0;
    if (mr_long < 0 || mr_long > step || mr_early < 0 || mr_early > mr_long) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: checkpoint state invalid: %lld multirate long steps, %lld ended "
                      "early, after %lld steps (allowed: 0 <= early <= long <= steps); it cannot "
                      "be resumed",
                      path, mr_long, mr_early, step);
        goto done;
    }
    s->mr_long_steps = (long)mr_long;
    s->mr_early_ends = (long)mr_early;
    s->step = (long)step;
    s->seg_t0_s = seg_t0;
    s->seg_steps = (long)seg_steps;
    s->t_s = seg_steps == 0 ? seg_t0 : seg_t0 + (double)seg_steps * s->dt_s;
    if ((st = check_state(s, path, err))) goto done;
    s->monitor_accum_s = accum;
    /* The active region's box (sim.c): results inside and outside it differ in the last bits,
     * so a resumed run continues with the box the interrupted one had. Without it (a
     * checkpoint from before the region existed) the first step scans the grid. */
    s->region_known = false;
    if (s->region_on && H5Lexists(root, "active_region_box", H5P_DEFAULT) > 0) {
        int box[6];
        const int n[3] = {s->grid.nx, s->grid.ny, s->grid.nz};
        bool ok = !get_array(root, "active_region_box", H5T_NATIVE_INT, 6, box);
        for (int d = 0; ok && d < 3; d++)
            ok = box[d] >= 0 && box[d] <= box[3 + d] && box[3 + d] <= n[d];
        if (!ok) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: checkpoint's /checkpoint/active_region_box is unreadable or not "
                          "within the %d x %d x %d grid",
                          path, n[0], n[1], n[2]);
            goto done;
        }
        for (int d = 0; d < 3; d++) s->reg_lo[d] = box[d], s->reg_hi[d] = box[3 + d];
        /* the rows' spans (sim.h); a checkpoint from before them: every row of the box whole
         * (a superset: the run goes on correctly, its last bits may differ from an
         * uninterrupted run's) */
        const size_t nrows = (size_t)n[1] * (size_t)n[2];
        if (H5Lexists(root, "active_region_span_lo", H5P_DEFAULT) > 0) {
            ok = !get_array(root, "active_region_span_lo", H5T_NATIVE_INT32, nrows, s->span_lo) &&
                 !get_array(root, "active_region_span_hi", H5T_NATIVE_INT32, nrows, s->span_hi);
            for (size_t r = 0; ok && r < nrows; r++) {
                const int j = (int)(r % (size_t)n[1]), k = (int)(r / (size_t)n[1]);
                const int a = s->span_lo[r], b = s->span_hi[r];
                ok = a >= b ? a == 0 && b == 0
                            : a >= box[0] && b <= box[3] && j >= box[1] && j < box[4] &&
                                  k >= box[2] && k < box[5];
            }
            if (!ok) {
                st = abl_fail(err, ABL_EINVAL,
                              "%s: checkpoint's /checkpoint/active_region_span_lo/_hi are "
                              "unreadable or not within its active region box",
                              path);
                goto done;
            }
        } else {
            for (size_t r = 0; r < nrows; r++) {
                const int j = (int)(r % (size_t)n[1]), k = (int)(r / (size_t)n[1]);
                const bool in = box[0] < box[3] && j >= box[1] && j < box[4] && k >= box[2] &&
                                k < box[5];
                s->span_lo[r] = in ? box[0] : 0;
                s->span_hi[r] = in ? box[3] : 0;
            }
        }
        s->region_known = true;
    }
    s->wall_s = wall;
    s->energy.E_stored_initial_J = e.E_stored_initial_J;
    s->energy.E_sources_J = e.E_sources_J;
    s->energy.E_perf_met_J = e.E_perf_met_J;
    s->energy.E_boundary_in_J = e.E_boundary_in_J;
    if (ncg > 0) {
        if (array_length(grp, "cg_iterations") != ncg || array_length(grp, "cg_residual") != ncg ||
            array_length(grp, "cg_time_s") != ncg) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: the checkpoint's solver log does not hold %lld solves; it cannot "
                          "be resumed",
                          path, ncg);
            goto done;
        }
        s->n_cg = 0;
        int *it = realloc(s->cg_iters, (size_t)ncg * sizeof *s->cg_iters);
        if (it) s->cg_iters = it;
        double *res = realloc(s->cg_resid, (size_t)ncg * sizeof *s->cg_resid);
        if (res) s->cg_resid = res;
        double *tm = realloc(s->cg_time_s, (size_t)ncg * sizeof *s->cg_time_s);
        if (tm) s->cg_time_s = tm;
        if (!it || !res || !tm) {
            st = abl_fail(err, ABL_ENOMEM, "out of memory");
            goto done;
        }
        s->cap_cg = (size_t)ncg;
        if (get_array(grp, "cg_iterations", H5T_NATIVE_INT, (hsize_t)ncg, s->cg_iters) ||
            get_array(grp, "cg_residual", H5T_NATIVE_DOUBLE, (hsize_t)ncg, s->cg_resid) ||
            get_array(grp, "cg_time_s", H5T_NATIVE_DOUBLE, (hsize_t)ncg, s->cg_time_s)) {
            st = h5err(err, path, "reading the solver log");
            goto done;
        }
        s->n_cg = (size_t)ncg;
    }
    if ((st = read_source_states(f, s, path, err))) goto done;
    if ((st = read_runlog(f, s, path, err))) goto done;
done:
    close_id(grp);
    close_id(root);
    close_id(f);
    quiet_end(&q);
    return st;
}
