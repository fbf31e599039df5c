/* fuzz_mesh.c - libFuzzer harness for HDF5 label meshes (mesh_read, mesh.h).
 *
 * Input: the bytes of a mesh file, written to a scratch file and read with mesh_read. The
 * reader must either return a mesh that satisfies the documented layout (dims >= 1, at most
 * ABL_GRID_MAX_VOXELS, finite spacing > 0, finite origin) or fail with a message and nothing
 * allocated; it must leave no HDF5 object and no file descriptor open either way. A mesh that
 * was read is written back with mesh_write and read again: the copy must be identical (labels,
 * geometry, label names), so a reader that accepts what its writer cannot express shows up.
 *
 * The library under test is instrumented; libhdf5 is the system's, so the fuzzer steers by our
 * branches and a crash inside libhdf5 shows as a stack through mesh.c (see docs/RELIABILITY.md
 * for known upstream issues).
 *
 * Two reads per input. The first runs in this process (mesh_read_ex in_process): the reader's
 * checks are fuzzed there, because the product's guarded read (a child process, the default of
 * mesh_read) turns every crash into an error message and its child's coverage never reaches
 * libFuzzer, which would hide exactly what fuzzing looks for. The second is the guarded read:
 * it must give the same status, message, geometry, labels and names, so the pipe transport
 * between child and parent is fuzzed too.
 */
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/grid.h"
#include "ablasim/mesh.h"
#include "fuzz_common.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) abort();                                                                      \
    } while (0)

/* Round trips only for meshes this small: writing costs a compressed HDF5 file per input. */
#define FUZZ_ROUNDTRIP_MAX_VOXELS ((size_t)1 << 20)

static size_t check_mesh(const abl_mesh *m)
{
    size_t n = 1;
    for (int a = 0; a < 3; a++) {
        CHECK(m->dims[a] >= 1);
        n *= (size_t)m->dims[a];
        CHECK(n <= ABL_GRID_MAX_VOXELS);
        CHECK(isfinite(m->spacing_mm[a]) && m->spacing_mm[a] > 0);
        CHECK(isfinite(m->origin_mm[a]));
    }
    CHECK(m->labels != NULL);
    /* every label byte must be readable (ASan checks the buffer holds all n) */
    volatile unsigned sum = 0;
    for (size_t c = 0; c < n; c++)
        sum += m->labels[c];
    (void)sum;
    if (m->label_names) CHECK(strlen(m->label_names) < ((size_t)1 << 24));
    return n;
}

/* Two error messages of the same failure: equal up to the innermost HDF5 description (h5util.c
 * appends it as " (HDF5: ...)"), which may quote heap addresses that differ between processes
 * ("ran off the end of the buffer: current p = 0x5606294e9188 ..."). */
static int same_message(const char *a, const char *b)
{
    const char *da = strstr(a, " (HDF5: "), *db = strstr(b, " (HDF5: ");
    if (!da || !db) return strcmp(a, b) == 0;
    return da - a == db - b && strncmp(a, b, (size_t)(da - a)) == 0;
}

static void roundtrip(const abl_mesh *m, size_t n)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/out.h5", fz_tmpdir());
    abl_error err = {0};
    CHECK(mesh_write(path, m, &err) == ABL_OK);
    abl_mesh b;
    CHECK(mesh_read(path, &b, &err) == ABL_OK);
    for (int a = 0; a < 3; a++) {
        CHECK(b.dims[a] == m->dims[a]);
        CHECK(b.spacing_mm[a] == m->spacing_mm[a] && b.origin_mm[a] == m->origin_mm[a]);
    }
    CHECK(memcmp(b.labels, m->labels, n) == 0);
    CHECK((b.label_names == NULL) == (m->label_names == NULL));
    if (m->label_names) CHECK(strcmp(b.label_names, m->label_names) == 0);
    mesh_free(&b);
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        init = 1;
        /* As mesh.c does before its first HDF5 call (see h5util.c): no library exit handler.
         * Calling HDF5 here first would otherwise register it, and after an upstream leak on
         * a malformed file it prints "infinite loop closing library" at exit. */
        H5dont_atexit();
        /* No HDF5 free lists: a recycled block would be reported (if leaked) with the stack of
         * whatever call first allocated it, which makes leak reports and tests/fuzz/lsan.supp
         * meaningless. With zero limits every block comes from and goes back to malloc. */
        if (H5set_free_list_limits(0, 0, 0, 0, 0, 0) < 0) abort();
    }
    const char *path = fz_write_file("in.h5", data, size);
    fz_capture_begin();
    int fd0 = fz_lowest_free_fd();
    /* ABLASIM_FUZZ_PRODUCT_PATH=1: only what `ablasim run` does (guarded read, no label names):
     * a campaign in this mode checks the product's promise that no mesh file crashes or hangs
     * it (issue 10), while the default mode above fuzzes the reader's own checks. */
    static int product_only = -1;
    if (product_only < 0) {
        const char *e = getenv("ABLASIM_FUZZ_PRODUCT_PATH");
        product_only = e && *e == '1';
    }
    if (product_only) {
        abl_mesh g;
        memset(&g, 0x5A, sizeof g);
        abl_error gerr = {0};
        const abl_mesh_read_opts run_path = {.skip_names = true};
        if (mesh_read_ex(path, &run_path, &g, &gerr) == ABL_OK) {
            check_mesh(&g);
            CHECK(g.label_names == NULL);
        } else {
            CHECK(g.labels == NULL && gerr.msg[0] != '\0');
        }
        mesh_free(&g);
        CHECK(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0);
        CHECK(fz_lowest_free_fd() == fd0);
        fz_capture_end();
        return 0;
    }
    abl_mesh m, g;
    memset(&m, 0xA5, sizeof m); /* mesh_read must initialise every field it hands back */
    memset(&g, 0x5A, sizeof g);
    abl_error err = {0}, gerr = {0};
    const abl_mesh_read_opts local = {.in_process = true};
    const abl_status st = mesh_read_ex(path, &local, &m, &err);
    /* the guarded read (product path) agrees exactly */
    const abl_status gst = mesh_read_ex(path, NULL, &g, &gerr);
    CHECK(gst == st && same_message(gerr.msg, err.msg));
    if (st == ABL_OK) {
        size_t n = check_mesh(&m);
        for (int a = 0; a < 3; a++)
            CHECK(g.dims[a] == m.dims[a] && g.spacing_mm[a] == m.spacing_mm[a] &&
                  g.origin_mm[a] == m.origin_mm[a]);
        CHECK(memcmp(g.labels, m.labels, n) == 0);
        CHECK((g.label_names == NULL) == (m.label_names == NULL));
        if (m.label_names) CHECK(strcmp(g.label_names, m.label_names) == 0);
        if (n <= FUZZ_ROUNDTRIP_MAX_VOXELS) roundtrip(&m, n);
    } else {
        CHECK(m.labels == NULL && m.label_names == NULL && err.msg[0] != '\0');
        CHECK(g.labels == NULL && g.label_names == NULL);
    }
    mesh_free(&m);
    mesh_free(&g);
    CHECK(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0); /* no HDF5 file or object open */
    CHECK(fz_lowest_free_fd() == fd0);                      /* no descriptor leaked */
    fz_capture_end();
    return 0;
}
