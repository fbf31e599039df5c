/* status.c - error message buffer and status -> exit code mapping. */
#include "ablasim/status.h"

#include <stdarg.h>
#include <stdio.h>

abl_status abl_fail(abl_error *err, abl_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

int abl_status_exit_code(abl_status s)
{
    switch (s) {
    case ABL_OK: return 0;
    case ABL_EINVAL: return 2;
    case ABL_EIO: return 3;
    case ABL_ENOMEM: return 4;
    case ABL_ENUM: return 5;
    case ABL_ESTOPPED: return 75;
    default: return 1;
    }
}

const char *abl_status_name(abl_status s)
{
    switch (s) {
    case ABL_OK: return "ok";
    case ABL_EINVAL: return "invalid input";
    case ABL_EIO: return "I/O error";
    case ABL_ENOMEM: return "out of memory";
    case ABL_ENUM: return "numerical fault";
    case ABL_ESTOPPED: return "stopped";
    default: return "internal error";
    }
}
