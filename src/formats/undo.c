/* undo.c - the previous versions of a set of files, kept until the new set is in place (see
 * undo.h). Marker format: the line "ablasim-undo 1 <tag>", then one line per member,
 * "O <path>" for a member that existed (its previous version is "<path>.before-<tag>.tmp") or
 * "N <path>" for one that did not; paths absolute. */
#include "undo.h"

#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static char *cat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (!s) return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

/* The previous version's name: path + ".before-<tag>.tmp" (a temporary of ours; the tag keeps
 * nested logs apart: the planner's margin runs keep their own). */
static char *old_name(const char *path, const char *tag)
{
    char *a = cat(path, ".before-"), *b = a ? cat(a, tag) : NULL, *c = b ? cat(b, ".tmp") : NULL;
    free(a);
    free(b);
    return c;
}

/* path made absolute against the working directory (no symlink resolution: the recovery may
 * run from another directory, and must name the same files). */
static char *absolute(const char *path)
{
    if (path[0] == '/') return cat(path, "");
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return NULL;
    char *d = cat(cwd, "/");
    char *r = d ? cat(d, path) : NULL;
    free(d);
    return r;
}

/* The previous version of path as old: a hard link, or a durable copy where the file system
 * has none. */
static int keep_old(const char *path, const char *old)
{
    if (unlink(old) != 0 && errno != ENOENT) return errno;
    if (link(path, old) == 0) return 0;
    const int le = errno;
    if (le != EPERM && le != ENOTSUP && le != EOPNOTSUPP && le != EMLINK && le != ENOSYS &&
        le != EXDEV)
        return le;
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0) return errno;
    int out = create_fresh(old), e = out < 0 ? errno : 0;
    char buf[1 << 16];
    while (!e) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            e = errno;
            break;
        }
        for (ssize_t off = 0; off < n && !e;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno != EINTR) e = errno;
            else if (w > 0) off += w;
        }
    }
    if (!e && fsync(out) != 0) e = errno;
    if (out >= 0 && close(out) != 0 && !e) e = errno;
    close(in);
    if (e && out >= 0) unlink(old);
    return e;
}

/* Member i back to its previous version (or gone, if it had none). */
static int restore_one(const char *path, const char *old, bool had_old)
{
    struct stat sb;
    if (!had_old) return unlink(path) != 0 && errno != ENOENT ? errno : 0;
    if (lstat(old, &sb) != 0) return errno == ENOENT ? 0 : errno; /* restored before */
    if (rename(old, path) != 0) return errno;
    /* rename between two links of one file does nothing (POSIX): the member was never
     * replaced, and the extra link goes */
    if (lstat(old, &sb) == 0 && unlink(old) != 0) return errno;
    return 0;
}

void undo_free(abl_undo *u)
{
    if (!u) return;
    for (int i = 0; i < u->n; i++) {
        if (u->path) free(u->path[i]);
        if (u->old) free(u->old[i]);
    }
    free(u->path);
    free(u->old);
    free(u->had_old);
    free(u->marker);
    memset(u, 0, sizeof *u);
}

int undo_begin(abl_undo *u, const char *marker, const char *tag, const char *const *members,
               int n)
{
    memset(u, 0, sizeof *u);
    u->marker = absolute(marker);
    u->path = calloc((size_t)(n > 0 ? n : 1), sizeof *u->path);
    u->old = calloc((size_t)(n > 0 ? n : 1), sizeof *u->old);
    u->had_old = calloc((size_t)(n > 0 ? n : 1), sizeof *u->had_old);
    if (!u->marker || !u->path || !u->old || !u->had_old) return ENOMEM;
    if (strchr(tag, ' ') || strchr(tag, '\n') || strchr(tag, '/')) return EINVAL;
    u->n = n;
    for (int i = 0; i < n; i++) {
        if (strchr(members[i], '\n')) return EINVAL;
        u->path[i] = absolute(members[i]);
        u->old[i] = u->path[i] ? old_name(u->path[i], tag) : NULL;
        if (!u->old[i]) return ENOMEM;
    }
    int e = 0, kept = 0;
    for (; kept < n && !e; kept++) {
        struct stat sb;
        if (lstat(u->path[kept], &sb) != 0) {
            if (errno != ENOENT) e = errno;
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            e = EISDIR;
            continue;
        }
        u->had_old[kept] = true;
        e = keep_old(u->path[kept], u->old[kept]);
        if (!e) fsync_dir_of(u->old[kept]);
        else u->failed = u->old[kept];
    }
    if (e && !u->failed) u->failed = u->path[kept - 1];
    abl_atomic a;
    if (!e) {
        u->failed = u->marker;
        e = atomic_open(&a, u->marker, ".tmp");
        FILE *f = e ? NULL : atomic_stream(&a);
        if (!e && !f) e = errno ? errno : EIO;
        if (f) {
            fprintf(f, "ablasim-undo 1 %s\n", tag);
            for (int i = 0; i < n; i++) fprintf(f, "%c %s\n", u->had_old[i] ? 'O' : 'N', u->path[i]);
            e = atomic_commit(&a);
        }
        atomic_abort(&a); /* removes the marker's temporary unless renamed; frees */
    }
    if (e) {
        for (int i = 0; i < kept && i < n; i++)
            if (u->had_old[i]) unlink(u->old[i]);
        return e;
    }
    u->active = true;
    u->failed = NULL;
    return 0;
}

int undo_end(abl_undo *u)
{
    if (!u->active) return 0;
    if (unlink(u->marker) != 0 && errno != ENOENT) return errno;
    fsync_dir_of(u->marker);
    u->active = false;
    for (int i = 0; i < u->n; i++)
        if (u->had_old[i]) unlink(u->old[i]); /* best effort: from here only a leftover */
    return 0;
}

int undo_restore(abl_undo *u)
{
    if (!u->active) return 0;
    int first = 0;
    for (int i = 0; i < u->n; i++) {
        int e = restore_one(u->path[i], u->old[i], u->had_old[i]);
        if (e && !first) first = e;
    }
    for (int i = 0; i < u->n; i++) fsync_dir_of(u->path[i]);
    if (first) return first; /* the marker stays: undo_recover finishes */
    if (unlink(u->marker) != 0 && errno != ENOENT) return errno;
    fsync_dir_of(u->marker);
    u->active = false;
    return 0;
}

int undo_recover(const char *marker, bool *restored)
{
    if (restored) *restored = false;
    FILE *f = fopen(marker, "r");
    if (!f) return errno == ENOENT ? 0 : errno;
    char line[PATH_MAX + 8], tag[64] = "";
    int e = 0;
    if (!fgets(line, sizeof line, f) || sscanf(line, "ablasim-undo 1 %63s", tag) != 1) e = EINVAL;
    while (!e && fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        if (len < 4 || line[len - 1] != '\n' || (line[0] != 'O' && line[0] != 'N') ||
            line[1] != ' ' || line[2] != '/') {
            e = EINVAL;
            break;
        }
        line[len - 1] = '\0';
        char *old = old_name(line + 2, tag);
        if (!old) {
            e = ENOMEM;
            break;
        }
        int r = restore_one(line + 2, old, line[0] == 'O');
        fsync_dir_of(line + 2);
        free(old);
        if (r && !e) e = r;
    }
    if (ferror(f) && !e) e = EIO;
    fclose(f);
    if (e) return e;
    if (unlink(marker) != 0 && errno != ENOENT) return errno;
    fsync_dir_of(marker);
    if (restored) *restored = true;
    return 0;
}
