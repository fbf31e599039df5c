/* fileguard.h - what a command may write, and what it must never touch.
 *
 * Every command that writes files declares, before any work, the files it reads (inputs, with
 * a role such as "scenario" or "mesh") and every name it may create, replace or remove
 * (outputs: the result, its temporaries, sidecars, checkpoint, lock). fileset_check refuses a
 * set in which an output is an input or another output: compared as resolved paths
 * (symlinks, "./a/../b") and, for files that exist, as device/inode (hard links). Inputs must
 * be regular files: FIFOs, character devices, sockets and directories are refused up front
 * (stat never blocks; opening a FIFO would). An output name that exists must be a regular file.
 *
 * fg_lock takes an exclusive advisory lock (flock) on "<target>.lock" for the life of a run, so
 * that a second process writing the same result fails at once with the first one's pid instead
 * of mixing their files. docs/RELIABILITY.md lists the guarantees and the tests behind them.
 */
#ifndef ABLASIM_FILEGUARD_H
#define ABLASIM_FILEGUARD_H

#include <stdbool.h>

#include "ablasim/status.h"

typedef struct abl_fileset abl_fileset;

abl_fileset *fileset_new(void);
void fileset_free(abl_fileset *fs);
/* A file the command reads: must exist and be a regular file (refused otherwise, naming the
 * role, the path and what it is). */
abl_status fileset_input(abl_fileset *fs, const char *role, const char *path, abl_error *err);
/* A name the command may write, replace or remove. If it exists it must be a regular file. */
abl_status fileset_output(abl_fileset *fs, const char *role, const char *path, abl_error *err);
/* Refuse any output that is the same file as an input or as another output (message names
 * both roles and both paths). */
abl_status fileset_check(const abl_fileset *fs, abl_error *err);

/* Open path read-only without blocking on a FIFO (O_NONBLOCK; O_CLOEXEC) and say what it is
 * from fstat of that descriptor (no race with a rename): *regular and *is_dir (both false when
 * fstat fails). Returns the descriptor, which the caller closes, or -1 with errno from open().
 * The mesh reader and the inputs' hash use it to refuse a FIFO or a device before reading a
 * byte (nifti.c keeps its own open: it also needs the file's size). */
int fg_open_noblock(const char *path, bool *regular, bool *is_dir);
/* Inputs only: path must be an existing regular file (role names it in the message). */
abl_status fg_require_regular(const char *role, const char *path, abl_error *err);
/* Do two names denote the same file (same inode when both exist, else the same resolved
 * path)? */
bool fg_same_file(const char *a, const char *b);
/* The default checkpoint of OUT.h5 is OUT plus this in place of .h5 (cli main.c). */
#define ABL_CKPT_SUFFIX ".ckpt.h5"
/* A result, margin file or phantom named like a checkpoint (*.ckpt.h5, the name a run gives
 * its checkpoint by default) where such a file exists: an interrupted run's checkpoint that
 * `run -o X.ckpt.h5` replaced without a word (an adversarial test, session 30). ABL_EINVAL
 * naming role and path; ABL_OK when the name is another or no file has it. */
abl_status fg_refuse_checkpoint_name(const char *role, const char *path, abl_error *err);
/* The resolved absolute name of an existing file (realpath), malloc'ed; NULL otherwise. */
char *fg_realpath(const char *path);
/* The directory part of a path, as written: "." without a slash, "/" for "/x", else everything
 * before the last slash. malloc'ed; NULL when out of memory. */
char *fg_dirname(const char *path);

typedef struct abl_lock abl_lock;
/* Exclusive lock on "<target>.lock" (created if needed, pid written into it). Another live
 * holder: ABL_EIO "another ablasim process is writing TARGET (pid N)". */
abl_status fg_lock(const char *target, abl_lock **out, abl_error *err);
/* Release and remove the lock file (only the holder removes it). NULL is fine. */
void fg_unlock(abl_lock *l);

#endif
