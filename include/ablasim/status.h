/* status.h - error codes and the message buffer every fallible function fills.
 *
 * Library functions never exit() or print: they return an abl_status and write one
 * human-readable sentence (naming file:line or key, the value and what is allowed) into an
 * abl_error. main() decides how to report it and which exit code to use.
 */
#ifndef ABLASIM_STATUS_H
#define ABLASIM_STATUS_H

#include <stddef.h>

typedef enum {
    ABL_OK = 0,
    ABL_EINVAL, /* bad input: config, mesh, command line */
    ABL_ENOMEM, /* allocation failed or the run would not fit in memory */
    ABL_EIO,    /* file missing, unreadable, unwritable, truncated */
    ABL_ENUM,   /* numerical fault: NaN/Inf, runaway temperature */
    ABL_ESTOPPED, /* stopped on request (SIGINT/SIGTERM): after writing a checkpoint, or before
                   * the run began (while loading, or in --dt-check's reference) with nothing
                   * written */
    ABL_EINTERNAL
} abl_status;

#define ABL_ERRMSG_LEN 1024

typedef struct {
    abl_status status;
    char msg[ABL_ERRMSG_LEN];
} abl_error;

/* Record a formatted message in err (if non-NULL) and return status. */
abl_status abl_fail(abl_error *err, abl_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Exit code main() uses for a status: 0 ok, 2 bad input, 3 I/O, 4 memory, 5 numerics,
 * 75 stopped on request (EX_TEMPFAIL: 'ablasim resume' continues from the checkpoint, or, when
 * it stopped before the run began, the same command starts again), 1 other. */
int abl_status_exit_code(abl_status s);
const char *abl_status_name(abl_status s);

#endif
