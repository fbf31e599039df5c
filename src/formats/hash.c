/* FNV-1a of a file's bytes (hash.h). */
#include "ablasim/hash.h"

#include <stdio.h>

uint64_t abl_fnv1a_file(uint64_t h, const char *path, bool mark_presence, bool *opened)
{
    FILE *f = fopen(path, "rb");
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
