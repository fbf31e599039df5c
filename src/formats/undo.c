/* undo.c - the previous versions of a set of files, kept until the new set is in place (see
 * undo.h). Marker format: the line "ablasim-undo 2 <tag>", then one line per member,
 * "O <name>" for a member that existed (its previous version is "<name>.before-<tag>.tmp") or
 * "N <name>" for one that did not. Names are relative to the marker's directory (with "../"
 * where a member lies elsewhere), so a log still names the right files after its directory
 * was moved or copied, and never files of another copy. Since session 23 a member may be
 * "o DEV INO SIZE MTIME_NS OLD_SIZE OLD_MTIME_NS <name>" / "n DEV INO SIZE MTIME_NS <name>"
 * with its new (and previous) version's identity (undo.h). */
#define _DEFAULT_SOURCE /* realpath */
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

#define MARKER_HEAD "ablasim-undo 2 "

/* The previous version's name: path + ".before-<tag>.tmp" (a temporary of ours; the tag keeps
 * nested logs apart: the planner's margin runs keep their own). */
static char *old_name(const char *path, const char *tag)
{
    char *a = path_cat(path, ".before-"), *b = a ? path_cat(a, tag) : NULL,
         *c = b ? path_cat(b, ".tmp") : NULL;
    free(a);
    free(b);
    return c;
}

/* A tag is one word of letters, digits, '-' and '_' (it becomes part of file names). */
static bool tag_ok(const char *tag)
{
    if (!tag[0] || strlen(tag) > 32) return false;
    for (const char *p = tag; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

/* path made absolute against the working directory and lexically normalised ("." and ".."
 * segments and repeated slashes removed; no symlink resolution). */
static char *lexical_absolute(const char *path)
{
    char *raw;
    if (path[0] == '/') {
        raw = path_cat(path, "");
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) return NULL;
        char *d = path_cat(cwd, "/");
        raw = d ? path_cat(d, path) : NULL;
        free(d);
    }
    if (!raw) return NULL;
    char *out = malloc(strlen(raw) + 2);
    if (!out) {
        free(raw);
        return NULL;
    }
    size_t n = 0;
    char *save = NULL;
    for (char *seg = strtok_r(raw, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
        if (!strcmp(seg, ".")) continue;
        if (!strcmp(seg, "..")) {
            while (n > 0 && out[n - 1] != '/') n--;
            if (n > 0) n--; /* the slash before the dropped segment */
            continue;
        }
        out[n++] = '/';
        size_t l = strlen(seg);
        memcpy(out + n, seg, l);
        n += l;
    }
    if (n == 0) out[n++] = '/';
    out[n] = '\0';
    free(raw);
    return out;
}

/* path absolute, with its directory resolved as the kernel resolves it (symlinks and ".."
 * after a symlink: "L/../maps/p" with L a symlink is not "maps/p"; found by an adversarial
 * review, session 23: the log named other files than those written) and the last component
 * kept; lexically normalised where the directory does not exist. */
static char *absolute(const char *path)
{
    char *lex = lexical_absolute(path);
    if (!lex) return NULL;
    const char *slash = strrchr(path, '/');
    if (!slash) return lex; /* in the working directory, which getcwd gave resolved */
    const size_t dl = slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(dl + 1);
    if (!dir) {
        free(lex);
        return NULL;
    }
    memcpy(dir, path, dl);
    dir[dl] = '\0';
    char *real = realpath(dir, NULL);
    free(dir);
    const char *base = slash + 1;
    if (!real || !base[0] || !strcmp(base, ".") || !strcmp(base, "..")) {
        free(real);
        return lex;
    }
    free(lex);
    char *d = path_cat(real, strcmp(real, "/") ? "/" : "");
    char *out = d ? path_cat(d, base) : NULL;
    free(d);
    free(real);
    return out;
}

/* The directory part of an absolute, normalised path ("/" for a file in the root). */
static char *dir_of(const char *abs)
{
    const char *slash = strrchr(abs, '/');
    size_t n = slash == abs ? 1 : (size_t)(slash - abs);
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, abs, n);
    d[n] = '\0';
    return d;
}

/* Split an absolute, normalised path into its components (in place; at most max). */
static int components(char *p, char **comp, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *seg = strtok_r(p, "/", &save); seg && n < max; seg = strtok_r(NULL, "/", &save))
        comp[n++] = seg;
    return n;
}

/* to (absolute, normalised) relative to the directory from (absolute, normalised): "../" for
 * every component of from below the common part, then the rest of to. */
static char *relative_to(const char *from, const char *to)
{
    char *f = path_cat(from, ""), *t = path_cat(to, "");
    char **fc = malloc(PATH_MAX * sizeof *fc), **tc = malloc(PATH_MAX * sizeof *tc);
    char *r = NULL;
    if (f && t && fc && tc) {
        const int nf = components(f, fc, PATH_MAX), nt = components(t, tc, PATH_MAX);
        int c = 0;
        while (c < nf && c < nt - 1 && !strcmp(fc[c], tc[c])) c++;
        size_t len = 1;
        for (int i = c; i < nf; i++) len += 3;
        for (int i = c; i < nt; i++) len += strlen(tc[i]) + 1;
        r = malloc(len);
        if (r) {
            size_t n = 0;
            for (int i = c; i < nf; i++) memcpy(r + n, "../", 3), n += 3;
            for (int i = c; i < nt; i++) {
                size_t l = strlen(tc[i]);
                memcpy(r + n, tc[i], l);
                n += l;
                if (i + 1 < nt) r[n++] = '/';
            }
            r[n] = '\0';
        }
    }
    free(f);
    free(t);
    free(fc);
    free(tc);
    return r;
}

/* A copy of a symlink (the link itself) or of a regular file's bytes and permission bits, made
 * durable: the previous version where the file system has no hard links. */
static int copy_old(const char *path, const struct stat *sb, const char *old)
{
    if (S_ISLNK(sb->st_mode)) {
        char target[PATH_MAX];
        ssize_t l = readlink(path, target, sizeof target - 1);
        if (l < 0) return errno;
        target[l] = '\0';
        return symlink(target, old) != 0 ? errno : 0;
    }
    int in = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0) return errno;
    int out = create_fresh(old), e = out < 0 ? errno : 0;
    /* the copy is as private as the file (patient data): its permission bits, not the umask's */
    if (!e && fchmod(out, sb->st_mode & 07777) != 0) e = errno;
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

/* The previous version of path as old: a hard link (of a symlink: the link itself), or a copy
 * where the file system has none. */
static int keep_old(const char *path, const struct stat *sb, const char *old)
{
    if (unlink(old) != 0 && errno != ENOENT) return errno;
    if (link(path, old) == 0) return 0;
    const int le = errno;
    if (le != EPERM && le != ENOTSUP && le != EOPNOTSUPP && le != EMLINK && le != ENOSYS &&
        le != EXDEV)
        return le;
    return copy_old(path, sb, old);
}

/* The identity of the member's new version, when the log has it. */
typedef struct undo_new_id {
    bool known;
    unsigned long long dev, ino, size, mtime_ns;
    /* the previous version's size and time (members that existed): "never replaced" also when
     * the kept copy is a copy, not a hard link (file systems without links) */
    unsigned long long old_size, old_mtime_ns;
} new_id;

/* A file's identity: device and inode, which a rename keeps, with its size and modification
 * time, because a freed inode number is soon reused (another command's temporary, created
 * after the killed one's was removed, got the same inode in the review's reproduction). */
static new_id file_id(const struct stat *sb)
{
    return (new_id){true,
                    (unsigned long long)sb->st_dev,
                    (unsigned long long)sb->st_ino,
                    (unsigned long long)sb->st_size,
                    (unsigned long long)sb->st_mtim.tv_sec * 1000000000ull +
                        (unsigned long long)sb->st_mtim.tv_nsec,
                    0,
                    0};
}

/* The new version is what the name holds: the same file, or a copy with its size and
 * modification time (a directory copied with cp -a or rsync -t, restored from a backup, moved
 * to another file system: the inode changes; a review of session 23 found recovery treating
 * such a copy as another command's file). */
static bool is_ours(const struct stat *sb, new_id id)
{
    const new_id c = file_id(sb);
    return c.size == id.size && c.mtime_ns == id.mtime_ns;
}

/* Does the member's name hold a file that is neither this log's new version nor its kept
 * previous version (another command wrote it since)? Only with the new version's identity. */
static bool foreign(const char *path, const char *old, bool had_old, new_id id)
{
    struct stat cur, sb;
    if (!id.known || lstat(path, &cur) != 0 || is_ours(&cur, id)) return false;
    if (had_old) {
        /* never replaced: the name still holds the previous version (its kept link, or the
         * file whose size and time the log recorded) */
        if (lstat(old, &sb) == 0 && cur.st_dev == sb.st_dev && cur.st_ino == sb.st_ino)
            return false;
        const new_id c = file_id(&cur);
        if (c.size == id.old_size && c.mtime_ns == id.old_mtime_ns) return false;
    }
    return true;
}

/* Member back to its previous version (or gone, if it had none). The callers first refuse a
 * log whose member another command has replaced since (foreign): nothing is deleted then. */
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
    free(u->id);
    free(u->marker);
    memset(u, 0, sizeof *u);
}

int undo_begin(abl_undo *u, const char *marker, const char *tag, const char *const *members,
               int n)
{
    return undo_begin_new(u, marker, tag, members, NULL, n);
}

int undo_begin_new(abl_undo *u, const char *marker, const char *tag,
                   const char *const *members, const char *const *news, int n)
{
    memset(u, 0, sizeof *u);
    const size_t cap = (size_t)(n > 0 ? n : 1);
    u->marker = absolute(marker);
    u->path = calloc(cap, sizeof *u->path);
    u->old = calloc(cap, sizeof *u->old);
    u->had_old = calloc(cap, sizeof *u->had_old);
    u->id = calloc(cap, sizeof *u->id);
    char *mdir = u->marker ? dir_of(u->marker) : NULL;
    char **rel = calloc(cap, sizeof *rel);
    int e = !u->marker || !u->path || !u->old || !u->had_old || !u->id || !mdir || !rel ? ENOMEM
                                                                                       : 0;
    if (!e && !tag_ok(tag)) e = EINVAL;
    u->n = e ? 0 : n;
    for (int i = 0; i < u->n && !e; i++) {
        if (strchr(members[i], '\n')) {
            e = EINVAL;
            break;
        }
        u->path[i] = absolute(members[i]);
        u->old[i] = u->path[i] ? old_name(u->path[i], tag) : NULL;
        rel[i] = u->path[i] ? relative_to(mdir, u->path[i]) : NULL;
        if (!u->old[i] || !rel[i]) e = ENOMEM;
        struct stat nb;
        if (!e && news && news[i] && lstat(news[i], &nb) == 0) u->id[i] = file_id(&nb);
    }
    int kept = 0;
    for (; kept < u->n && !e; kept++) {
        struct stat sb;
        if (lstat(u->path[kept], &sb) != 0) {
            if (errno != ENOENT) e = errno, u->failed = u->path[kept];
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            e = EISDIR;
            u->failed = u->path[kept];
            continue;
        }
        u->had_old[kept] = true;
        {
            const new_id was = file_id(&sb);
            u->id[kept].old_size = was.size;
            u->id[kept].old_mtime_ns = was.mtime_ns;
        }
        e = keep_old(u->path[kept], &sb, u->old[kept]);
        if (!e) fsync_dir_of(u->old[kept]);
        else u->failed = u->old[kept];
    }
    abl_atomic a;
    if (!e) {
        u->failed = u->marker;
        e = atomic_open(&a, u->marker, ".tmp");
        FILE *f = e ? NULL : atomic_stream(&a);
        if (!e && !f) e = errno ? errno : EIO;
        if (f) {
            fprintf(f, MARKER_HEAD "%s\n", tag);
            /* "O name" / "N name"; with the identities "o DEV INO SIZE MTIME_NS OLD_SIZE
             * OLD_MTIME_NS name" / "n DEV INO SIZE MTIME_NS name" (lower case: readers before
             * session 23 refuse such a log rather than restore it without the check) */
            for (int i = 0; i < u->n; i++) {
                const new_id *d = &u->id[i];
                if (d->known && u->had_old[i])
                    fprintf(f, "o %llu %llu %llu %llu %llu %llu %s\n", d->dev, d->ino, d->size,
                            d->mtime_ns, d->old_size, d->old_mtime_ns, rel[i]);
                else if (d->known)
                    fprintf(f, "n %llu %llu %llu %llu %s\n", d->dev, d->ino, d->size,
                            d->mtime_ns, rel[i]);
                else
                    fprintf(f, "%c %s\n", u->had_old[i] ? 'O' : 'N', rel[i]);
            }
            e = atomic_commit(&a);
        }
        atomic_abort(&a); /* removes the marker's temporary unless renamed; frees */
    }
    for (int i = 0; i < u->n; i++) free(rel[i]);
    free(rel);
    free(mdir);
    if (e) {
        for (int i = 0; i < kept && i < u->n; i++)
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
    if (unlink(u->marker) != 0 && errno != ENOENT) {
        u->failed = u->marker;
        return errno;
    }
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
    for (int i = 0; i < u->n; i++)
        if (foreign(u->path[i], u->old[i], u->had_old[i], u->id[i])) {
            u->failed = u->path[i];
            return EEXIST; /* the marker and the previous versions stay */
        }
    for (int i = 0; i < u->n; i++) {
        int e = restore_one(u->path[i], u->old[i], u->had_old[i]);
        if (e && !first) first = e, u->failed = u->path[i];
    }
    for (int i = 0; i < u->n; i++) fsync_dir_of(u->path[i]);
    if (first) return first; /* the marker stays: undo_recover finishes */
    if (unlink(u->marker) != 0 && errno != ENOENT) {
        u->failed = u->marker;
        return errno;
    }
    fsync_dir_of(u->marker);
    u->active = false;
    return 0;
}

/* Read marker: its tag and members (absolute names, resolved against the marker's directory),
 * or an errno (EINVAL: not ablasim's). */
typedef struct {
    char tag[40];
    int n;
    char **path;
    bool *had_old;
    new_id *id;
} marker_data;

static void marker_free(marker_data *m)
{
    for (int i = 0; i < m->n; i++) free(m->path[i]);
    free(m->path);
    free(m->had_old);
    free(m->id);
    memset(m, 0, sizeof *m);
}

static int marker_read(const char *marker, marker_data *m)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(marker, "r");
    if (!f) return errno;
    char *abs = absolute(marker), *mdir = abs ? dir_of(abs) : NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = getline(&line, &cap, f);
    int e = !mdir ? ENOMEM : 0;
    if (!e && (len < (ssize_t)strlen(MARKER_HEAD) + 2 ||
               strncmp(line, MARKER_HEAD, strlen(MARKER_HEAD)) != 0 || line[len - 1] != '\n'))
        e = EINVAL;
    if (!e) {
        line[len - 1] = '\0';
        snprintf(m->tag, sizeof m->tag, "%s", line + strlen(MARKER_HEAD));
        if (!tag_ok(m->tag)) e = EINVAL;
    }
    int capm = 0;
    while (!e && (len = getline(&line, &cap, f)) > 0) {
        const char kind = line[0];
        const bool with_id = kind == 'o' || kind == 'n';
        if (len < 4 || line[len - 1] != '\n' ||
            (kind != 'O' && kind != 'N' && kind != 'o' && kind != 'n') || line[1] != ' ') {
            e = EINVAL;
            break;
        }
        line[len - 1] = '\0';
        new_id id = {false, 0, 0, 0, 0, 0, 0};
        const char *name = line + 2;
        if (with_id) {
            /* four numbers, each followed by exactly one space (a name may begin with a space:
             * sscanf's " " would eat it; found by review, session 23) */
            unsigned long long *v[6] = {&id.dev,     &id.ino,      &id.size,
                                        &id.mtime_ns, &id.old_size, &id.old_mtime_ns};
            const int nv = kind == 'o' ? 6 : 4;
            const char *q = line + 2;
            for (int k = 0; k < nv && !e; k++) {
                char *end = NULL;
                errno = 0;
                if (*q < '0' || *q > '9') e = EINVAL;
                else *v[k] = strtoull(q, &end, 10);
                if (!e && (errno || !end || *end != ' ')) e = EINVAL;
                if (!e) q = end + 1;
            }
            if (e) break;
            id.known = true;
            name = q;
        }
        if (!name[0] || name[0] == '/') {
            e = EINVAL;
            break;
        }
        if (m->n == capm) {
            capm = capm ? 2 * capm : 8;
            char **p = realloc(m->path, (size_t)capm * sizeof *p);
            bool *h = p ? realloc(m->had_old, (size_t)capm * sizeof *h) : NULL;
            new_id *q = h ? realloc(m->id, (size_t)capm * sizeof *q) : NULL;
            if (p) m->path = p;
            if (h) m->had_old = h;
            if (q) m->id = q;
            if (!p || !h || !q) {
                e = ENOMEM;
                break;
            }
        }
        m->id[m->n] = id;
        char *d = path_cat(mdir, "/"), *joined = d ? path_cat(d, name) : NULL;
        m->path[m->n] = joined ? absolute(joined) : NULL;
        free(d);
        free(joined);
        if (!m->path[m->n]) {
            e = ENOMEM;
            break;
        }
        m->had_old[m->n++] = kind == 'O' || kind == 'o';
    }
    if (!e && ferror(f)) e = EIO;
    free(line);
    free(abs);
    free(mdir);
    fclose(f);
    if (e) marker_free(m);
    return e;
}

int undo_recover(const char *marker, bool *restored, const char **failed)
{
    if (restored) *restored = false;
    static char failed_name[PATH_MAX];
    if (failed) *failed = marker;
    marker_data m;
    int e = marker_read(marker, &m);
    if (e) return e == ENOENT ? 0 : e;
    /* a member another command has replaced since the interrupted one: restoring would delete
     * or overwrite that command's file, leaving it would mix two sets; nothing is touched and
     * the caller says which (EEXIST) */
    for (int i = 0; i < m.n; i++) {
        char *old = old_name(m.path[i], m.tag);
        const bool f = old && foreign(m.path[i], old, m.had_old[i], m.id[i]);
        free(old);
        if (f) {
            snprintf(failed_name, sizeof failed_name, "%s", m.path[i]);
            if (failed) *failed = failed_name;
            marker_free(&m);
            return EEXIST;
        }
    }
    for (int i = 0; i < m.n; i++) {
        char *old = old_name(m.path[i], m.tag);
        int r = old ? restore_one(m.path[i], old, m.had_old[i]) : ENOMEM;
        fsync_dir_of(m.path[i]);
        free(old);
        if (r && !e) {
            e = r;
            snprintf(failed_name, sizeof failed_name, "%s", m.path[i]);
            if (failed) *failed = failed_name;
        }
    }
    marker_free(&m);
    if (e) return e;
    if (unlink(marker) != 0 && errno != ENOENT) return errno;
    fsync_dir_of(marker);
    if (restored) *restored = true;
    return 0;
}

int undo_discard(const char *marker)
{
    marker_data m;
    int e = marker_read(marker, &m);
    if (e) return e == ENOENT ? 0 : e;
    /* the marker first: without it the copies are only leftovers */
    if (unlink(marker) != 0 && errno != ENOENT) e = errno;
    if (!e) fsync_dir_of(marker);
    for (int i = 0; i < m.n && !e; i++) {
        char *old = old_name(m.path[i], m.tag);
        if (old && unlink(old) != 0 && errno != ENOENT && !e) e = errno;
        free(old);
    }
    marker_free(&m);
    return e;
}
