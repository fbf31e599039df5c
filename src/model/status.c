/* status.c - error message buffer and status -> exit code mapping. */
#include "ablasim/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A message longer than the buffer (a long path, a list of keys) is cut so that the reader sees
 * that it was cut, and at a character boundary: vsnprintf alone would stop silently and could
 * leave half of a multi-byte UTF-8 character, which the JSON and HDF5 writers then refuse or
 * replace. */
static void mark_cut(char *msg, size_t cap)
{
    static const char mark[] = " [...message cut]";
    size_t at = cap - sizeof mark; /* room for the mark and its NUL */
    /* step back over UTF-8 continuation bytes (10xxxxxx) to the start of a character */
    while (at > 0 && ((unsigned char)msg[at] & 0xC0) == 0x80) at--;
    memcpy(msg + at, mark, sizeof mark);
}

abl_status abl_fail(abl_error *err, abl_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        if (n >= (int)sizeof err->msg) mark_cut(err->msg, sizeof err->msg);
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
