/* atomic_file.h - the one way ablasim replaces a file (private to src/: results, formats,
 * analysis, sweep).
 *
 * A new version of FINAL is written to a temporary beside it (FINAL + suffix), made durable
 * (fsync), renamed over FINAL, and the directory is fsynced so that the rename survives a
 * crash: FINAL is always the old file or the complete new one. The temporary is created fresh:
 * whatever had its name (a killed run's leftover, or a symlink someone put there) is unlinked,
 * never truncated or followed (O_CREAT | O_EXCL | O_NOFOLLOW), so no other file's contents can
 * be replaced through it. Abort removes the temporary.
 *
 *   abl_atomic a;
 *   int e = atomic_open(&a, path, ".tmp");     // or atomic_reserve for HDF5 / znzlib
 *   ... write through atomic_stream(&a), atomic_write or (reserved) the library ...
 *   if (!e) e = atomic_commit(&a);             // sync + rename + directory sync
 *   if (e) atomic_abort(&a);                   // report strerror(e)
 *
 * Commits of several files together (output.c's commit-marker protocol, margin_io.c's pair)
 * sync every temporary first (atomic_sync), then rename (atomic_rename) in their own order.
 * Functions returning int give 0 or an errno value. */
#ifndef ABLASIM_ATOMIC_FILE_H
#define ABLASIM_ATOMIC_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct {
    char *path;     /* final name */
    char *tmp;      /* temporary name: path + suffix */
    int fd;         /* descriptor of the temporary; -1 once closed (or reserved) */
    FILE *f;        /* stdio stream on fd (atomic_stream), NULL otherwise */
    bool synced;    /* the temporary is complete and durable */
    bool renamed;   /* the temporary has become path: nothing left to remove */
} abl_atomic;

/* a + b in a new string (malloc; NULL when out of memory): the names of temporaries, markers
 * and previous versions, path + suffix. */
char *path_cat(const char *a, const char *b);
/* Create path as a new, empty file of our own (unlink first, then O_EXCL | O_NOFOLLOW):
 * an open descriptor, or -1 with errno set. */
int create_fresh(const char *path);
/* fsync a file by name: 0 or the errno. */
int fsync_path(const char *path);
/* fsync the directory holding path: makes renames durable. Best effort (not every file
 * system supports it). */
void fsync_dir_of(const char *path);

/* Start a replacement of path: create the fresh temporary path + suffix, open for writing. */
int atomic_open(abl_atomic *a, const char *path, const char *suffix);
/* The same, with the descriptor closed at once: for libraries that create the file by name
 * (H5Fcreate with H5F_ACC_TRUNC, znzopen), which then open the fresh file made here. */
int atomic_reserve(abl_atomic *a, const char *path, const char *suffix);
/* A stdio stream ("w") on the temporary; NULL with errno set. */
FILE *atomic_stream(abl_atomic *a);
/* Write n bytes to the temporary's descriptor (all of them, or an errno; ENOSPC for a short
 * write). */
int atomic_write(abl_atomic *a, const void *buf, size_t n);
/* Make the temporary complete and durable: flush the stream (a full disk shows up here, not
 * at fprintf), fsync, close (by name when reserved). Nothing is renamed. */
int atomic_sync(abl_atomic *a);
/* Rename the synced temporary over path (no directory sync). */
int atomic_rename(abl_atomic *a);
/* atomic_sync if not done, atomic_rename, fsync the directory. */
int atomic_commit(abl_atomic *a);
/* Close the temporary if open, remove it unless renamed, free the names. Safe on a zeroed or
 * failed abl_atomic and after a commit (it then only frees); every abl_atomic that
 * atomic_open/atomic_reserve touched ends with it. */
void atomic_abort(abl_atomic *a);

#endif
