/* sweep_internal.h - private interfaces between the files of the sweep module (src/sweep):
 * the table layout, one point's result row and ablation mask, the journal, the table writers
 * and the point runner. Not a public module; include/ablasim/sweep.h is the interface. */
#ifndef ABLASIM_SWEEP_INTERNAL_H
#define ABLASIM_SWEEP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ablasim/scenario.h"
#include "ablasim/sim.h"
#include "ablasim/hash.h"
#include "ablasim/sweep.h"

/* Files under output_dir (names fixed so that a re-run finds them). */
#define SWEEP_JOURNAL "journal.txt"
#define SWEEP_CSV "results.csv"
#define SWEEP_H5 "results.h5"
#define SWEEP_UNDO "results.undo" /* undo log while the two tables are renamed (undo.h) */
#define SWEEP_POINTS_DIR "points"
#define SWEEP_JOURNAL_MAGIC "ablasim-sweep-journal 1"

/* The numeric output columns of one point and where each group starts. Built once from the
 * base scenario (thresholds, tissues in the grid); every rank builds the same one. */
struct sweep_layout {
    int n_hot, n_cold;
    double hot_C[ABL_MAX_THRESHOLDS], cold_C[ABL_MAX_THRESHOLDS];
    int ntis; /* tissues with their own columns */
    char (*tis)[ABL_TISSUE_NAME_LEN];
    bool per_tissue;

    int nvals;                                /* numeric output columns */
    char **vname;                             /* their names */
    char **vunit;                             /* and units (HDF5 "units" attribute) */
    int i_dt, i_steps, i_wall, i_hot, i_cold; /* group starts (hot: n_hot values) */
    int i_hot_t, i_cold_t;  /* per tissue: [thr * ntis + tissue]; -1 without per_tissue */
    int i_tmax_t, i_tmin_t; /* per tissue extremes [tissue]; -1 without per_tissue */
    int i_zone;             /* 3 extents of T_max >= ablation threshold [mm] */
    int i_vabl;             /* hot column at the ablation threshold, -1 if none */
    int i_margin; /* margin_min_mm, verdict_pass (5 mm, heat or cold zone as ablasim margin) */

    int ncols; /* every table column: point, inputs, status, numeric outputs, message */
    const char **cols;
    uint64_t fingerprint; /* base scenario text, tissue table text, columns, threshold */
};

/* One point's result. val has layout->nvals entries (NaN where not computed). */
typedef struct {
    bool done;
    abl_status status;
    char *msg; /* error text (NULL when ok) */
    double *val;
} sweep_row;

/* Voxels with T_max >= the ablation threshold, as runs of the flattened [nz][ny][nx] index:
 * a compact zone in a big grid is a few thousand runs rather than a bit per voxel. */
typedef struct {
    int dims[3];
    double spacing_mm[3], origin_mm[3];
    size_t nruns, cap;
    uint32_t *runs; /* start, length pairs */
} sweep_mask;

/* ---- helpers (sweep_spec.c) ---- */
uint32_t sweep_crc32(const void *data, size_t n);
char *sweep_strdup(const char *s);
/* path joined to dir unless absolute */
char *sweep_join(const char *dir, const char *rel);
/* Shortest "%.Ng" (N = 15..17) that reads back as v: exact and readable. */
void sweep_fmt_double(char *buf, size_t len, double v);

/* ---- layout (sweep_validate.c) ---- */
/* Unit of a column or scenario key from its name's suffix ("_per_s" -> "1/s"). */
const char *sweep_unit_of(const char *name);
void layout_free(sweep_layout *L);
sweep_row *rows_alloc(size_t n, int nvals);
void rows_free(sweep_row *rows, size_t n);
void row_set(sweep_row *r, abl_status st, const char *msg, int nvals);

/* ---- one point (sweep_point.c) ---- */
/* Load, plan and run point i in this thread with the current OpenMP thread count; fill row (a
 * failed point is a row with its status and message, never an error of the sweep) and, when
 * mask is non-NULL, the ablation mask. field_path: per-point result file or NULL. progress
 * (may be NULL) is sim_run's callback: MPI rank 0 serves its work queue from it. stop (may be
 * NULL): sim_run's stop request; a point stopped by it is a row with status ABL_ESTOPPED,
 * which the caller does not journal. */
void point_run(const abl_sweep *sw, size_t i, const char *field_path, sweep_row *row,
               sweep_mask *mask, abl_progress_fn progress, void *progress_user,
               volatile sig_atomic_t *stop);
void mask_free(sweep_mask *m);

/* ---- journal and mask files (sweep_journal.c) ---- */
/* Status as one word ("ok", "invalid_input", "io_error", ...), in the journal and the table:
 * words, not enum numbers, so a journal stays readable when status codes are added. */
const char *sweep_status_word(abl_status s);
/* The status of a word; -1 if none matches. */
int sweep_status_parse(const char *word, abl_status *s);
typedef struct {
    char path[1024];
    int fd;
    off_t end;         /* end of the last complete line */
    size_t torn_bytes; /* dropped incomplete last line */
    size_t bad_lines;  /* complete lines that failed their checksum */
} sweep_journal;

/* Open (create) output_dir/journal.txt, lock it, check it belongs to this sweep, load every
 * valid entry of a current point into rows (last wins), cut off a torn last line. */
abl_status journal_open(sweep_journal *j, const abl_sweep *sw, sweep_row *rows, abl_error *err);
/* Append one line (single write, then fsync). */
abl_status journal_append(sweep_journal *j, const abl_sweep *sw, size_t i, const sweep_row *row,
                          abl_error *err);
void journal_close(sweep_journal *j);
/* Line text (without newline handling by the caller: includes '\n'); caller frees. */
char *journal_format(const abl_sweep *sw, size_t i, const sweep_row *row);

char *mask_path(const abl_sweep *sw, size_t i);
char *field_path(const abl_sweep *sw, size_t i);
abl_status mask_write(const abl_sweep *sw, size_t i, const sweep_mask *m, abl_error *err);
/* Read and check (magic, checksum, point hash); ABL_EIO with a message when absent/bad. */
abl_status mask_read(const abl_sweep *sw, size_t i, sweep_mask *m, abl_error *err);

/* Serialise a result (row + optional mask) for MPI and back. */
size_t result_pack_size(const abl_sweep *sw, const sweep_row *row, const sweep_mask *m);
void result_pack(const abl_sweep *sw, size_t i, const sweep_row *row, const sweep_mask *m,
                 unsigned char *buf);
abl_status result_unpack(const abl_sweep *sw, const unsigned char *buf, size_t len, size_t *i,
                         sweep_row *row, sweep_mask *m, abl_error *err);

/* ---- tables (sweep_table.c) ---- */
/* Write results.csv and results.h5 (tmp + rename) from rows of every point; with the
 * probability map when sw->prob_map_on (reads each ok point's mask). */
abl_status table_write(const abl_sweep *sw, const sweep_row *rows, sweep_summary *sum,
                       abl_error *err);
/* Before a sweep writes anything: the previous table pair back if a sweep was killed between
 * the two renames (its undo log, undo.h). */
abl_status table_recover(const abl_sweep *sw, abl_error *err);

/* ---- file system (sweep_journal.c) ---- */
abl_status sweep_mkdirs(const char *path, abl_error *err);
int sweep_fsync_dir(const char *dir);

#endif
