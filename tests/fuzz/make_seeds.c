/* make_seeds.c - writes the binary seed corpora of the mesh and NIfTI harnesses.
 *
 * Usage: make_seeds CORPUS_DIR   (make fuzz-seeds; writes .h5 files into CORPUS_DIR/fuzz_mesh
 * and .nii/.nii.gz files into CORPUS_DIR/fuzz_nifti). The seeds are tiny (a few voxels) and each
 * exercises one branch of the readers, valid or not: the fuzzer mutates from there, and make check
 * replays them. Valid files come from the project's own writers (mesh_write, nifti_write_u8); the
 * malformed ones are built with the HDF5 API or from a NIfTI header patched field by field,
 * which is how such files arise in practice (other tools, interrupted copies).
 */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <nifti2_io.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ablasim/mesh.h"
#include "ablasim/nifti.h"

static const char *dir_mesh, *dir_nii;

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "make_seeds: %s: %s\n", what, msg);
    exit(1);
}

static char *path_in(const char *dir, const char *name)
{
    static char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) die(path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    if (!b || fread(b, 1, (size_t)len, f) != (size_t)len) die(path, "read failed");
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void spit(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) die(path, "write failed");
}

/* Copies of src cut to each length (an interrupted copy). */
static void truncations(const char *dir, const char *src_name, const char *stem, const char *ext)
{
    size_t n;
    unsigned char *b = slurp(path_in(dir, src_name), &n);
    const size_t cuts[] = {0, 8, 100, 348, 512, n / 2, n - 1};
    char name[256];
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        if (cuts[i] >= n) continue;
        snprintf(name, sizeof name, "%s_cut%zu%s", stem, cuts[i], ext);
        spit(path_in(dir, name), b, cuts[i]);
    }
    free(b);
}

/* ---- HDF5 meshes ------------------------------------------------------------------------ */

static void write_mesh(const char *name, int nx, int ny, int nz, const char *names)
{
    abl_mesh m = {{nx, ny, nz}, {1.0, 1.5, 2.0}, {-1.5, -0.75, 0.0}, NULL, (char *)names};
    size_t n = (size_t)nx * ny * nz;
    m.labels = malloc(n);
    for (size_t c = 0; c < n; c++)
        m.labels[c] = (uint8_t)(c % 3);
    abl_error err = {0};
    if (mesh_write(path_in(dir_mesh, name), &m, &err) != ABL_OK) die(name, err.msg);
    free(m.labels);
}

enum {
    H_CONTIG = 1, /* contiguous layout, no filters */
    H_NO_SPACING = 2,
    H_SPACING_2 = 4, /* spacing with 2 values */
    H_SPACING_NEG = 8,
    H_SPACING_INT = 16, /* integer attribute */
    H_ORIGIN_NAN = 32,
    H_NAMES_FIXED = 64, /* label_names as a 1-D fixed-length string array */
    H_NAMES_VLEN = 128, /* ... variable-length strings */
    H_NAMES_INT = 256,  /* label_names of the wrong type */
    H_LATEST = 512,     /* newest file format: superblock v3, checksummed metadata */
    H_RANK2 = 1024,
};

static void attr_vec(hid_t obj, const char *name, hid_t type, const void *v, hsize_t n)
{
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, type, v) < 0) die(name, "attribute");
    H5Aclose(a);
    H5Sclose(sp);
}

/* /labels of the given stored type with the values vals (x fastest), and attributes per flags. */
static void h5_mesh(const char *name, hid_t type, const void *vals, int flags)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (flags & H_LATEST) H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    hid_t f = H5Fcreate(path_in(dir_mesh, name), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (f < 0) die(name, "create");
    hsize_t dims3[3] = {2, 2, 3}, dims2[2] = {2, 6};
    hid_t sp =
        flags & H_RANK2 ? H5Screate_simple(2, dims2, NULL) : H5Screate_simple(3, dims3, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (!(flags & H_CONTIG)) {
        hsize_t ch3[3] = {1, 2, 3}, ch2[2] = {1, 6};
        H5Pset_chunk(dcpl, flags & H_RANK2 ? 2 : 3, flags & H_RANK2 ? ch2 : ch3);
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, 4);
    }
    hid_t d = H5Dcreate2(f, "labels", type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, vals) < 0) die(name, "data");
    double sp3[3] = {0.5, 0.5, 1.0}, org[3] = {0, 0, 0};
    if (flags & H_SPACING_NEG) sp3[1] = -0.5;
    if (flags & H_ORIGIN_NAN) org[2] = NAN;
    if (flags & H_SPACING_INT) {
        int isp[3] = {1, 2, 3};
        attr_vec(d, "spacing_mm", H5T_NATIVE_INT, isp, 3);
    } else if (!(flags & H_NO_SPACING)) {
        attr_vec(d, "spacing_mm", H5T_NATIVE_DOUBLE, sp3, flags & H_SPACING_2 ? 2 : 3);
    }
    attr_vec(d, "origin_mm", H5T_NATIVE_DOUBLE, org, 3);
    if (flags & H_NAMES_FIXED) {
        const char fixed[3][8] = {"fat", "1:liver", "tumour"};
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 8);
        attr_vec(d, "label_names", t, fixed, 3);
        H5Tclose(t);
    }
    if (flags & H_NAMES_VLEN) {
        const char *v[2] = {"0:fat", "liver"};
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        attr_vec(d, "label_names", t, v, 2);
        H5Tclose(t);
    }
    if (flags & H_NAMES_INT) {
        int v[2] = {1, 2};
        attr_vec(d, "label_names", H5T_NATIVE_INT, v, 2);
    }
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Pclose(fapl);
    if (H5Fclose(f) < 0) die(name, "close");
}

static void mesh_seeds(void)
{
    write_mesh("valid_4x3x2_names.h5", 4, 3, 2, "0:liver,1:tumour,2:blood");
    write_mesh("valid_2x2x2.h5", 2, 2, 2, NULL);
    write_mesh("valid_1x1x1.h5", 1, 1, 1, NULL);
    truncations(dir_mesh, "valid_4x3x2_names.h5", "valid_4x3x2", ".h5");

    uint8_t u8[12] = {0, 1, 2, 0, 1, 2, 2, 1, 0, 255, 1, 0};
    int16_t i16[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    int16_t i16_bad[12] = {0, 1, 2, 3, 300, 5, 6, 7, 8, 9, -1, 11};
    float f32[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    uint8_t b8[12] = {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1};
    h5_mesh("contiguous_u8.h5", H5T_STD_U8LE, u8, H_CONTIG);
    truncations(dir_mesh, "contiguous_u8.h5", "contiguous_u8", ".h5");
    h5_mesh("latest_format_u8.h5", H5T_STD_U8LE, u8, H_LATEST);
    h5_mesh("int16_labels.h5", H5T_STD_I16BE, i16, H_CONTIG);
    h5_mesh("int16_out_of_range.h5", H5T_STD_I16LE, i16_bad, 0);
    h5_mesh("float_labels.h5", H5T_IEEE_F32LE, f32, H_CONTIG);
    h5_mesh("rank2.h5", H5T_STD_U8LE, u8, H_RANK2 | H_CONTIG);
    h5_mesh("no_spacing.h5", H5T_STD_U8LE, u8, H_NO_SPACING | H_CONTIG);
    h5_mesh("spacing_2_values.h5", H5T_STD_U8LE, u8, H_SPACING_2 | H_CONTIG);
    h5_mesh("spacing_negative.h5", H5T_STD_U8LE, u8, H_SPACING_NEG | H_CONTIG);
    h5_mesh("spacing_int.h5", H5T_STD_U8LE, u8, H_SPACING_INT | H_CONTIG);
    h5_mesh("origin_nan.h5", H5T_STD_U8LE, u8, H_ORIGIN_NAN | H_CONTIG);
    h5_mesh("names_fixed_array.h5", H5T_STD_U8LE, u8, H_NAMES_FIXED | H_CONTIG);
    h5_mesh("names_vlen_array.h5", H5T_STD_U8LE, u8, H_NAMES_VLEN);
    h5_mesh("names_int.h5", H5T_STD_U8LE, u8, H_NAMES_INT | H_CONTIG);

    /* numpy bool as h5py stores it: an enum over int8 */
    hid_t e = H5Tenum_create(H5T_NATIVE_INT8);
    int8_t fv = 0, tv = 1;
    H5Tenum_insert(e, "FALSE", &fv);
    H5Tenum_insert(e, "TRUE", &tv);
    h5_mesh("enum_bool_labels.h5", e, b8, H_CONTIG);
    H5Tclose(e);

    /* /labels is a group, and a file without /labels */
    hid_t f =
        H5Fcreate(path_in(dir_mesh, "labels_is_group.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g = H5Gcreate2(f, "labels", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    H5Fclose(f);
    f = H5Fcreate(path_in(dir_mesh, "empty_file.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(f);
}

/* ---- NIfTI ------------------------------------------------------------------------------- */

static abl_nifti_geom geom_diag(int nx, int ny, int nz, double sx, double sy, double sz)
{
    abl_nifti_geom g;
    const int dims[3] = {nx, ny, nz};
    const double sp[3] = {fabs(sx), fabs(sy), fabs(sz)}, org[3] = {-10, 20, 5.5};
    nifti_geom_from_grid(&g, dims, sp, org);
    g.affine[0][0] = sx;
    g.affine[1][1] = sy;
    g.affine[2][2] = sz;
    return g;
}

static void write_nii(const char *name, const abl_nifti_geom *g)
{
    size_t n = (size_t)g->dims[0] * g->dims[1] * g->dims[2];
    uint8_t *lab = malloc(n);
    for (size_t c = 0; c < n; c++)
        lab[c] = (uint8_t)(c % 4);
    abl_error err = {0};
    if (nifti_write_u8(path_in(dir_nii, name), g, lab, &err) != ABL_OK) die(name, err.msg);
    free(lab);
}

/* NIfTI-1 header for a 3x2x2 image of this datatype, qform and sform both diag(1,2,3). */
static nifti_1_header n1_header(int datatype)
{
    const int64_t d[8] = {3, 3, 2, 2, 1, 1, 1, 1};
    nifti_image *nim = nifti_make_new_nim(d, datatype, 0);
    if (!nim) die("nifti_make_new_nim", "failed");
    nim->dx = nim->pixdim[1] = 1;
    nim->dy = nim->pixdim[2] = 2;
    nim->dz = nim->pixdim[3] = 3;
    nim->qform_code = nim->sform_code = NIFTI_XFORM_SCANNER_ANAT;
    nim->quatern_b = nim->quatern_c = nim->quatern_d = 0;
    nim->qfac = 1;
    nim->qoffset_x = -1;
    nim->qoffset_y = 2;
    nim->qoffset_z = 3;
    nim->sto_xyz = nifti_quatern_to_dmat44(0, 0, 0, -1, 2, 3, 1, 2, 3, 1);
    nim->xyz_units = NIFTI_UNITS_MM;
    nim->nifti_type = NIFTI_FTYPE_NIFTI1_1;
    nim->iname_offset = 352;
    nifti_1_header h;
    if (nifti_convert_nim2n1hdr(nim, &h)) die("nifti_convert_nim2n1hdr", "failed");
    nifti_image_free(nim);
    return h;
}

/* header + 4-byte extender + data, gzip-compressed when gz */
static void write_raw(const char *name, const void *hdr, size_t hsize, const void *data,
                      size_t nbytes, int gz)
{
    znzFile fp = znzopen(path_in(dir_nii, name), "wb", gz);
    if (znz_isnull(fp)) die(name, "open");
    static const char ext[4] = {0, 0, 0, 0};
    if (znzwrite(hdr, 1, hsize, fp) != hsize || znzwrite(ext, 1, 4, fp) != 4 ||
        (nbytes && znzwrite(data, 1, nbytes, fp) != nbytes))
        die(name, "write");
    znzclose(fp);
}

static void nifti_seeds(void)
{
    abl_nifti_geom g = geom_diag(3, 2, 2, 1.0, 2.0, 3.0);
    write_nii("identity_u8.nii", &g);
    write_nii("identity_u8.nii.gz", &g);
    truncations(dir_nii, "identity_u8.nii", "identity_u8", ".nii");
    truncations(dir_nii, "identity_u8.nii.gz", "identity_u8_gz", ".nii.gz");
    g = geom_diag(3, 2, 2, -1.0, -2.0, 3.0); /* LPS as written by Slicer/ITK */
    write_nii("lps_flipped.nii", &g);
    write_nii("lps_flipped.nii.gz", &g);
    g = geom_diag(4, 1, 1, 0.5, 0.5, 0.5);
    write_nii("line_4x1x1.nii", &g);
    /* voxel axes permuted: file i runs along world y, j along z, k along x */
    abl_nifti_geom p = geom_diag(3, 2, 2, 1, 1, 1);
    memset(p.affine, 0, sizeof p.affine);
    p.affine[1][0] = 1.0;
    p.affine[2][1] = -2.0;
    p.affine[0][2] = 3.0;
    p.affine[3][3] = 1.0;
    p.spacing_mm[0] = 1.0;
    p.spacing_mm[1] = 2.0;
    p.spacing_mm[2] = 3.0;
    write_nii("permuted_axes.nii", &p);

    uint8_t u8[12] = {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3};
    int16_t i16[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255};
    float fint[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    float ffrac[12] = {0, 1, 2, 3, 4, 5.5f, 6, 7, 8, 9, 10, 11};
    double f64[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 300};
    int32_t i32neg[12] = {0, 1, 2, -3, 4, 5, 6, 7, 8, 9, 10, 11};

    nifti_1_header h = n1_header(DT_INT16);
    write_raw("int16.nii", &h, sizeof h, i16, sizeof i16, 0);
    write_raw("int16.nii.gz", &h, sizeof h, i16, sizeof i16, 1);
    h = n1_header(DT_FLOAT32);
    write_raw("float32_whole.nii", &h, sizeof h, fint, sizeof fint, 0);
    write_raw("float32_fraction.nii", &h, sizeof h, ffrac, sizeof ffrac, 0);
    h = n1_header(DT_FLOAT64);
    write_raw("float64_out_of_range.nii", &h, sizeof h, f64, sizeof f64, 0);
    h = n1_header(DT_INT32);
    write_raw("int32_negative.nii", &h, sizeof h, i32neg, sizeof i32neg, 0);
    h = n1_header(DT_UINT8);
    h.scl_slope = 2;
    h.scl_inter = 1;
    write_raw("scaled_u8.nii", &h, sizeof h, u8, sizeof u8, 0);
    h = n1_header(DT_RGB24);
    write_raw("rgb24.nii", &h, sizeof h, u8, sizeof u8, 0); /* 12 of 36 bytes: truncated too */

    h = n1_header(DT_UINT8);
    h.dim[0] = 4;
    h.dim[4] = 2;
    uint8_t two[24] = {0};
    write_raw("4d_two_volumes.nii", &h, sizeof h, two, sizeof two, 0);
    h = n1_header(DT_UINT8);
    memcpy(h.magic, "ni1", 4);
    write_raw("ni1_pair_header.nii", &h, sizeof h, u8, sizeof u8, 0);
    h = n1_header(DT_UINT8);
    memset(h.magic, 0, 4);
    write_raw("analyze_no_magic.nii", &h, sizeof h, u8, sizeof u8, 0);
    h = n1_header(DT_UINT8);
    h.pixdim[2] = 0;
    h.qform_code = h.sform_code = 0;
    write_raw("zero_pixdim.nii", &h, sizeof h, u8, sizeof u8, 0);
    h = n1_header(DT_UINT8);
    h.qform_code = 0; /* sform only */
    write_raw("sform_only.nii", &h, sizeof h, u8, sizeof u8, 0);
    h = n1_header(DT_UINT8);
    h.qform_code = h.sform_code = 0; /* "method 1": pixdim only */
    write_raw("no_xform.nii", &h, sizeof h, u8, sizeof u8, 0);
    h = n1_header(DT_UINT8);
    h.qform_code = 0; /* sform rotated 30 degrees about z */
    h.srow_x[0] = (float)cos(0.5236);
    h.srow_x[1] = (float)-sin(0.5236) * 2;
    h.srow_y[0] = (float)sin(0.5236);
    h.srow_y[1] = (float)cos(0.5236) * 2;
    write_raw("oblique_sform.nii", &h, sizeof h, u8, sizeof u8, 0);
    h = n1_header(DT_UINT8);
    h.xyzt_units = NIFTI_UNITS_METER;
    write_raw("units_meter.nii", &h, sizeof h, u8, sizeof u8, 0);
    h = n1_header(DT_UINT8);
    h.vox_offset = 100; /* inside the header */
    write_raw("vox_offset_in_header.nii", &h, sizeof h, u8, sizeof u8, 0);
    h = n1_header(DT_UINT8);
    write_raw("data_truncated.nii", &h, sizeof h, u8, 7, 0);
    write_raw("data_truncated.nii.gz", &h, sizeof h, u8, 7, 1);
    h = n1_header(DT_UINT8);
    h.dim[1] = 30000;
    h.dim[2] = 30000;
    h.dim[3] = 2; /* 1.8e9 voxels declared, 12 bytes present */
    write_raw("huge_dims_truncated.nii", &h, sizeof h, u8, sizeof u8, 0);

    h = n1_header(DT_INT16); /* big-endian file: header and data swapped */
    int16_t i16be[12];
    memcpy(i16be, i16, sizeof i16);
    nifti_swap_2bytes(12, i16be);
    swap_nifti_header(&h, 1);
    write_raw("int16_big_endian.nii", &h, sizeof h, i16be, sizeof i16be, 0);

    /* NIfTI-2 (64-bit dims, double affine) */
    const int64_t d[8] = {3, 3, 2, 2, 1, 1, 1, 1};
    nifti_image *nim = nifti_make_new_nim(d, DT_UINT8, 0);
    nim->dx = nim->pixdim[1] = 0.5;
    nim->dy = nim->pixdim[2] = 0.5;
    nim->dz = nim->pixdim[3] = 0.5;
    nim->qform_code = NIFTI_XFORM_SCANNER_ANAT;
    nim->qfac = 1;
    nim->nifti_type = NIFTI_FTYPE_NIFTI2_1;
    nim->iname_offset = 544;
    nifti_2_header h2;
    if (nifti_convert_nim2n2hdr(nim, &h2)) die("nifti_convert_nim2n2hdr", "failed");
    nifti_image_free(nim);
    memcpy(h2.magic, "n+2\0\r\n\032\n", 8);
    write_raw("nifti2.nii", &h2, sizeof h2, u8, sizeof u8, 0);
    write_raw("nifti2.nii.gz", &h2, sizeof h2, u8, sizeof u8, 1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    static char m[4096], n[4096];
    snprintf(m, sizeof m, "%s/fuzz_mesh", argv[1]);
    snprintf(n, sizeof n, "%s/fuzz_nifti", argv[1]);
    mkdir(argv[1], 0755);
    mkdir(m, 0755);
    mkdir(n, 0755);
    dir_mesh = m;
    dir_nii = n;
    nifti_set_debug_level(0);
    mesh_seeds();
    nifti_seeds();
    return 0;
}
