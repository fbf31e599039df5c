/* FNV-1a of a file's bytes (hash.h). */
#include "ablasim/hash.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "ablasim/fileguard.h"

/* Only a regular file is read. A FIFO blocked in open() for good and /dev/zero was read without
 * end (437 GB in ten minutes), before any loader's own special-file check and deaf to SIGINT and
 * SIGTERM, which the run loop polls (QA, session 28: `devices_file=/dev/zero`, a plan's mesh a
 * FIFO). fg_open_noblock opens a FIFO without waiting for a writer; such a file counts as not
 * opened, and the loader that reads it next names it. */
static FILE *open_regular(const char *path)
{
    bool regular, is_dir;
    int fd = fg_open_noblock(path, &regular, &is_dir);
    if (fd < 0) return NULL;
    if (!regular) {
        close(fd);
        return NULL;
    }
    /* a regular file reads the same either way; the flag is cleared to read it as before */
    const int fl = fcntl(fd, F_GETFL);
    if (fl != -1) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "rb");
    if (!f) close(fd);
    return f;
}

uint64_t abl_fnv1a_file(uint64_t h, const char *path, bool mark_presence, bool *opened)
{
    FILE *f = open_regular(path);
    if (opened) *opened = f != NULL;
    if (mark_presence) {
        const unsigned char present = f != NULL;
        h = abl_fnv1a(h, &present, 1);
    }
    if (!f) return h;
    unsigned char buf[1 << 13]; /* 8 KiB: this may run on a sweep worker thread's stack */
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0) h = abl_fnv1a(h, buf, r);
    fclose(f);
    return h;
}
