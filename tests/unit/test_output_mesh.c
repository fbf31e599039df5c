/* test_output_mesh.c - mesh files: write/read round trip and every rejected input.
 *
 * Malformed files are built here with the HDF5 API directly (a rank-2 /labels, no spacing,
 * zero spacing, float labels, ...) so each check in mesh_read is exercised on its own. Every
 * failure must carry the right status and name the file. (The result file written by output.c
 * is exercised end to end through the command-line tests.)
 */
#include <CUnit/CUnit.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ablasim/h5_schema.h"
#include "ablasim/mesh.h"
#include "testutil.h"

static char dir[512];

/* ABLASIM_TMP if set (kept), else the runner's per-run scratch directory (removed at exit). */
static int suite_init(void)
{
    const char *d = getenv("ABLASIM_TMP");
    if (d && *d) {
        mkdir(d, 0700);
        snprintf(dir, sizeof dir, "%s", d);
    } else {
        snprintf(dir, sizeof dir, "%s", tu_tmpdir());
    }
    struct stat sb;
    return stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) ? 0 : -1;
}

static void tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/mesh_%d_%s", dir, (int)getpid(), name);
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* A deterministic, poorly compressible label pattern (so that half a file is half the data). */
static void fill_labels(uint8_t *l, size_t n)
{
    uint32_t x = 12345u;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        l[i] = (uint8_t)(x >> 24);
    }
}

static abl_mesh make_mesh(int nx, int ny, int nz)
{
    abl_mesh m = {0};
    m.dims[0] = nx;
    m.dims[1] = ny;
    m.dims[2] = nz;
    m.spacing_mm[0] = 0.5;
    m.spacing_mm[1] = 0.75;
    m.spacing_mm[2] = 1.25;
    m.origin_mm[0] = -10.0;
    m.origin_mm[1] = 2.5;
    m.origin_mm[2] = 33.0;
    size_t n = (size_t)nx * ny * nz;
    m.labels = malloc(n);
    if (m.labels) fill_labels(m.labels, n);
    return m;
}

/* Write a file with one dataset and optionally a spacing attribute of nsp values.
 * Returns 0 on success. */
static int write_custom(const char *path, const char *dname, int rank, const hsize_t *dims,
                        hid_t ftype, hid_t mtype, const void *data, const double *spacing,
                        hsize_t nsp)
{
    H5E_auto2_t fn;
    void *fd;
    H5Eget_auto2(H5E_DEFAULT, &fn, &fd);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int rc = -1;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = f >= 0 && sp >= 0 ? H5Dcreate2(f, dname, ftype, sp, H5P_DEFAULT, H5P_DEFAULT,
                                             H5P_DEFAULT)
                                : -1;
    if (d >= 0 && H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0) {
        rc = 0;
        if (nsp > 0) {
            hid_t asp = H5Screate_simple(1, &nsp, NULL);
            hid_t a = H5Acreate2(d, H5A_SPACING_MM, H5T_IEEE_F64LE, asp, H5P_DEFAULT,
                                 H5P_DEFAULT);
            if (a < 0 || H5Awrite(a, H5T_NATIVE_DOUBLE, spacing) < 0) rc = -1;
            if (a >= 0) H5Aclose(a);
            H5Sclose(asp);
        }
    }
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (f >= 0 && H5Fclose(f) < 0) rc = -1;
    H5Eset_auto2(H5E_DEFAULT, fn, fd);
    return rc;
}

/* mesh_read must fail with this status and a message naming the file. */
static void expect_read_error(const char *path, abl_status want)
{
    abl_mesh m;
    abl_error err = {0};
    abl_status st = mesh_read(path, &m, &err);
    CU_ASSERT_EQUAL(st, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    CU_ASSERT_PTR_NULL(m.labels);
    if (st != want || !strstr(err.msg, path))
        fprintf(stderr, "\n  mesh_read(%s): status %d, message: %s\n", path, (int)st, err.msg);
    mesh_free(&m);
}

static void test_roundtrip(void)
{
    char path[600], tmp[610];
    tmp_path(path, sizeof path, "roundtrip.h5");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    abl_mesh m = make_mesh(7, 5, 3); /* all different, so any axis mix-up shows */
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.labels);
    m.label_names = "0:fat,1:liver,2:tumour";
    abl_error err = {0};
    CU_ASSERT_EQUAL_FATAL(mesh_write(path, &m, &err), ABL_OK);
    CU_ASSERT_FALSE(file_exists(tmp));

    abl_mesh r;
    abl_status st = mesh_read(path, &r, &err);
    CU_ASSERT_EQUAL(st, ABL_OK);
    if (st == ABL_OK) {
        for (int a = 0; a < 3; a++) {
            CU_ASSERT_EQUAL(r.dims[a], m.dims[a]);
            CU_ASSERT_EQUAL(r.spacing_mm[a], m.spacing_mm[a]);
            CU_ASSERT_EQUAL(r.origin_mm[a], m.origin_mm[a]);
        }
        CU_ASSERT_EQUAL(memcmp(r.labels, m.labels, 7 * 5 * 3), 0);
        CU_ASSERT_PTR_NOT_NULL(r.label_names);
        if (r.label_names) CU_ASSERT_STRING_EQUAL(r.label_names, m.label_names);
    } else {
        fprintf(stderr, "\n  %s\n", err.msg);
    }
    mesh_free(&r);

    /* The file is C order [nz][ny][nx]: check one voxel through HDF5 itself. */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, H5_MESH_LABELS, H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[3] = {0, 0, 0};
    H5Sget_simple_extent_dims(sp, dims, NULL);
    CU_ASSERT(dims[0] == 3 && dims[1] == 5 && dims[2] == 7);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);

    m.label_names = NULL;
    free(m.labels);
    remove(path);
}

static void test_default_origin_and_conversion(void)
{
    /* int16 labels in range are accepted (converted to uint8); no origin_mm: centred grid. */
    char path[600];
    tmp_path(path, sizeof path, "int16.h5");
    hsize_t dims[3] = {2, 3, 4};
    int16_t data[24];
    for (int i = 0; i < 24; i++) data[i] = (int16_t)(i * 10);
    double sp[3] = {1.0, 2.0, 4.0};
    CU_ASSERT_EQUAL_FATAL(write_custom(path, H5_MESH_LABELS, 3, dims, H5T_STD_I16LE,
                                       H5T_NATIVE_INT16, data, sp, 3),
                          0);
    /* label_names as a fixed-length ASCII string (what numpy bytes become). */
    const char names[] = "0:fat,10:liver";
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, H5_MESH_LABELS, H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, sizeof names - 1);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    hid_t asp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(d, H5A_LABEL_NAMES, t, asp, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(a >= 0 && H5Awrite(a, t, names) >= 0);
    H5Aclose(a);
    H5Sclose(asp);
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);

    abl_mesh m;
    abl_error err = {0};
    CU_ASSERT_EQUAL(mesh_read(path, &m, &err), ABL_OK);
    if (m.labels) {
        CU_ASSERT(m.dims[0] == 4 && m.dims[1] == 3 && m.dims[2] == 2);
        CU_ASSERT_DOUBLE_EQUAL(m.origin_mm[0], -1.5 * 1.0, 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(m.origin_mm[1], -1.0 * 2.0, 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(m.origin_mm[2], -0.5 * 4.0, 1e-12);
        for (int i = 0; i < 24; i++) CU_ASSERT_EQUAL(m.labels[i], i * 10);
        CU_ASSERT_PTR_NOT_NULL(m.label_names);
        if (m.label_names) CU_ASSERT_STRING_EQUAL(m.label_names, names);
    }
    mesh_free(&m);
    remove(path);
}

static void test_missing_file(void)
{
    char path[600];
    tmp_path(path, sizeof path, "does_not_exist.h5");
    expect_read_error(path, ABL_EIO);
}

static void test_not_hdf5(void)
{
    char path[600];
    tmp_path(path, sizeof path, "text.h5");
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("labels: not really\n", f);
    fclose(f);
    expect_read_error(path, ABL_EIO);
    remove(path);
}

static void test_truncated(void)
{
    char full[600], half[600];
    tmp_path(full, sizeof full, "full.h5");
    tmp_path(half, sizeof half, "half.h5");
    abl_mesh m = make_mesh(40, 30, 20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.labels);
    abl_error err = {0};
    CU_ASSERT_EQUAL_FATAL(mesh_write(full, &m, &err), ABL_OK);
    free(m.labels);

    FILE *in = fopen(full, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    CU_ASSERT(size > 10000);
    char *buf = malloc((size_t)size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT_EQUAL(fread(buf, 1, (size_t)size, in), (size_t)size);
    fclose(in);
    FILE *out = fopen(half, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    fwrite(buf, 1, (size_t)size / 2, out);
    fclose(out);
    free(buf);

    expect_read_error(half, ABL_EIO);
    remove(full);
    remove(half);
}

static void test_rank2(void)
{
    char path[600];
    tmp_path(path, sizeof path, "rank2.h5");
    hsize_t dims[2] = {4, 5};
    uint8_t data[20] = {0};
    double sp[3] = {1, 1, 1};
    CU_ASSERT_EQUAL_FATAL(write_custom(path, H5_MESH_LABELS, 2, dims, H5T_STD_U8LE,
                                       H5T_NATIVE_UINT8, data, sp, 3),
                          0);
    expect_read_error(path, ABL_EINVAL);
    remove(path);
}

static void test_no_spacing(void)
{
    char path[600];
    tmp_path(path, sizeof path, "nospacing.h5");
    hsize_t dims[3] = {2, 2, 2};
    uint8_t data[8] = {0};
    CU_ASSERT_EQUAL_FATAL(write_custom(path, H5_MESH_LABELS, 3, dims, H5T_STD_U8LE,
                                       H5T_NATIVE_UINT8, data, NULL, 0),
                          0);
    expect_read_error(path, ABL_EINVAL);
    remove(path);
}

static void test_zero_spacing(void)
{
    char path[600];
    tmp_path(path, sizeof path, "zerospacing.h5");
    hsize_t dims[3] = {2, 2, 2};
    uint8_t data[8] = {0};
    double sp[3] = {1.0, 0.0, 1.0};
    CU_ASSERT_EQUAL_FATAL(write_custom(path, H5_MESH_LABELS, 3, dims, H5T_STD_U8LE,
                                       H5T_NATIVE_UINT8, data, sp, 3),
                          0);
    expect_read_error(path, ABL_EINVAL);
    remove(path);
}

static void test_spacing_two_values(void)
{
    char path[600];
    tmp_path(path, sizeof path, "spacing2.h5");
    hsize_t dims[3] = {2, 2, 2};
    uint8_t data[8] = {0};
    double sp[2] = {1.0, 1.0};
    CU_ASSERT_EQUAL_FATAL(write_custom(path, H5_MESH_LABELS, 3, dims, H5T_STD_U8LE,
                                       H5T_NATIVE_UINT8, data, sp, 2),
                          0);
    expect_read_error(path, ABL_EINVAL);
    remove(path);
}

static void test_no_labels(void)
{
    char path[600];
    tmp_path(path, sizeof path, "nolabels.h5");
    hsize_t dims[3] = {2, 2, 2};
    uint8_t data[8] = {0};
    double sp[3] = {1, 1, 1};
    CU_ASSERT_EQUAL_FATAL(write_custom(path, "/segmentation", 3, dims, H5T_STD_U8LE,
                                       H5T_NATIVE_UINT8, data, sp, 3),
                          0);
    expect_read_error(path, ABL_EINVAL);
    abl_mesh m;
    abl_error err = {0};
    mesh_read(path, &m, &err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, H5_MESH_LABELS));
    remove(path);
}

static void test_float_labels(void)
{
    char path[600];
    tmp_path(path, sizeof path, "floatlabels.h5");
    hsize_t dims[3] = {2, 2, 2};
    float data[8] = {0};
    double sp[3] = {1, 1, 1};
    CU_ASSERT_EQUAL_FATAL(write_custom(path, H5_MESH_LABELS, 3, dims, H5T_IEEE_F32LE,
                                       H5T_NATIVE_FLOAT, data, sp, 3),
                          0);
    expect_read_error(path, ABL_EINVAL);
    remove(path);
}

static void test_label_out_of_range(void)
{
    /* 300 does not fit a uint8: it must be refused, not clamped to 255 (a wrong tissue). */
    char path[600];
    tmp_path(path, sizeof path, "range.h5");
    hsize_t dims[3] = {1, 2, 2};
    int16_t data[4] = {0, 1, 300, 2};
    double sp[3] = {1, 1, 1};
    CU_ASSERT_EQUAL_FATAL(write_custom(path, H5_MESH_LABELS, 3, dims, H5T_STD_I16LE,
                                       H5T_NATIVE_INT16, data, sp, 3),
                          0);
    expect_read_error(path, ABL_EINVAL);
    remove(path);
}

static void test_write_errors(void)
{
    char path[600];
    abl_error err = {0};
    abl_mesh m = make_mesh(3, 3, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.labels);

    /* Missing directory: ABL_EIO naming the file, nothing created. */
    tmp_path(path, sizeof path, "no_such_dir/mesh.h5");
    CU_ASSERT_EQUAL(mesh_write(path, &m, &err), ABL_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));

    /* An invalid mesh is refused and an existing file of that name is left alone. */
    tmp_path(path, sizeof path, "keep.h5");
    CU_ASSERT_EQUAL_FATAL(mesh_write(path, &m, &err), ABL_OK);
    abl_mesh bad = m;
    bad.spacing_mm[2] = 0.0;
    CU_ASSERT_EQUAL(mesh_write(path, &bad, &err), ABL_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    abl_mesh r;
    CU_ASSERT_EQUAL(mesh_read(path, &r, &err), ABL_OK);
    if (r.labels) CU_ASSERT_EQUAL(r.spacing_mm[2], m.spacing_mm[2]);
    mesh_free(&r);
    remove(path);
    free(m.labels);
}

void register_output_mesh_tests(void)
{
    CU_pSuite s = CU_add_suite("mesh", suite_init, NULL);
    if (!s) return;
    CU_add_test(s, "mesh write/read round trip", test_roundtrip);
    CU_add_test(s, "mesh int16 labels, default origin, fixed-length names",
                test_default_origin_and_conversion);
    CU_add_test(s, "mesh_read missing file -> EIO", test_missing_file);
    CU_add_test(s, "mesh_read not HDF5 -> EIO", test_not_hdf5);
    CU_add_test(s, "mesh_read truncated file -> EIO", test_truncated);
    CU_add_test(s, "mesh_read rank-2 labels -> EINVAL", test_rank2);
    CU_add_test(s, "mesh_read no spacing_mm -> EINVAL", test_no_spacing);
    CU_add_test(s, "mesh_read zero spacing -> EINVAL", test_zero_spacing);
    CU_add_test(s, "mesh_read 2-value spacing -> EINVAL", test_spacing_two_values);
    CU_add_test(s, "mesh_read no /labels -> EINVAL", test_no_labels);
    CU_add_test(s, "mesh_read float labels -> EINVAL", test_float_labels);
    CU_add_test(s, "mesh_read label 300 -> EINVAL", test_label_out_of_range);
    CU_add_test(s, "mesh_write errors keep old file", test_write_errors);
}
