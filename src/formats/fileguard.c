/* fileguard.c - input/output collision checks, file kinds, output locks (see fileguard.h). */
#define _DEFAULT_SOURCE /* realpath, flock */
#include "ablasim/fileguard.h"
#include "ablasim/json_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *role;
    char *path;   /* as given, for messages */
    char *canon;  /* resolved directory + base name */
    bool exists;
    dev_t dev;
    ino_t ino;
    bool output;
} fg_entry;

struct abl_fileset {
    fg_entry *e;
    int n, cap;
};

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* realpath() of the directory part + "/" + the last component: the name a file has or will
 * have, independent of symlinked directories and "./a/../b" spellings. The last component is
 * resolved too when it exists (a symlink to an input is that input). */
static char *canonical(const char *path)
{
    char buf[PATH_MAX];
    if (realpath(path, buf)) return dup_str(buf);
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    const char *base = slash ? slash + 1 : path;
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (!realpath(dir, buf)) return dup_str(path); /* missing directory: compare as written */
    size_t need = strlen(buf) + strlen(base) + 2;
    char *p = malloc(need);
    if (p) snprintf(p, need, "%s/%s", strcmp(buf, "/") ? buf : "", base);
    return p;
}

abl_fileset *fileset_new(void)
{
    return calloc(1, sizeof(abl_fileset));
}

void fileset_free(abl_fileset *fs)
{
    if (!fs) return;
    for (int i = 0; i < fs->n; i++) {
        free(fs->e[i].path);
        free(fs->e[i].canon);
    }
    free(fs->e);
    free(fs);
}

static const char *kind_name(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO (named pipe)"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "not a regular file";
}

int fg_open_noblock(const char *path, bool *regular, bool *is_dir)
{
    *regular = *is_dir = false;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat sb;
    if (fstat(fd, &sb) == 0) {
        *regular = S_ISREG(sb.st_mode);
        *is_dir = S_ISDIR(sb.st_mode);
    }
    return fd;
}

abl_status fg_require_regular(const char *role, const char *path, abl_error *err)
{
    struct stat sb;
    if (!path || !path[0]) return abl_fail(err, ABL_EINVAL, "%s: empty file name", role);
    if (stat(path, &sb) != 0)
        return abl_fail(err, ABL_EIO, "%s %s: cannot open (%s)", role, path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return abl_fail(err, ABL_EINVAL, "%s %s: is %s; only regular files are read", role, path,
                        kind_name(sb.st_mode));
    return ABL_OK;
}

static abl_status add(abl_fileset *fs, const char *role, const char *path, bool output,
                      abl_error *err)
{
    if (!fs) return abl_fail(err, ABL_ENOMEM, "out of memory");
    if (!path || !path[0]) return abl_fail(err, ABL_EINVAL, "%s: empty file name", role);
    struct stat sb;
    bool ex = stat(path, &sb) == 0;
    if (!output && ex && S_ISDIR(sb.st_mode)) /* the readers' own wording: an I/O error */
        return abl_fail(err, ABL_EIO, "%s %s: cannot open (is a directory)", role, path);
    if (ex && !S_ISREG(sb.st_mode))
        return abl_fail(err, output ? ABL_EIO : ABL_EINVAL, "%s %s: is %s; %s", role, path,
                        kind_name(sb.st_mode),
                        output ? "only a regular file (or a new name) can be written"
                               : "only regular files are read");
    if (!output && !ex)
        return abl_fail(err, ABL_EIO, "%s %s: cannot open (%s)", role, path, strerror(errno));
    if (fs->n == fs->cap) {
        int cap = fs->cap ? 2 * fs->cap : 16;
        fg_entry *e = realloc(fs->e, (size_t)cap * sizeof *e);
        if (!e) return abl_fail(err, ABL_ENOMEM, "out of memory");
        fs->e = e;
        fs->cap = cap;
    }
    fg_entry *e = &fs->e[fs->n];
    memset(e, 0, sizeof *e);
    e->role = role;
    e->output = output;
    e->path = dup_str(path);
    e->canon = canonical(path);
    if (!e->path || !e->canon) {
        free(e->path);
        free(e->canon);
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    }
    e->exists = ex;
    if (ex) {
        e->dev = sb.st_dev;
        e->ino = sb.st_ino;
    }
    fs->n++;
    return ABL_OK;
}

abl_status fileset_input(abl_fileset *fs, const char *role, const char *path, abl_error *err)
{
    return add(fs, role, path, false, err);
}

abl_status fileset_output(abl_fileset *fs, const char *role, const char *path, abl_error *err)
{
    /* the undo logs and journals (undo.h, the sweep's and the plan's) record one name a line:
     * a name with a line break cannot be recorded, and a message would print it over two lines
     * (found by a read-only review, session 22: margin failed late with "Invalid argument") */
    /* nor can the JSON summary and the XDMF sidecar (XML 1.0 has no control characters, not
     * even escaped) hold a name with another control character or bytes that are not UTF-8:
     * the run gave exit 0 with a summary a strict reader rejects and a sidecar ParaView cannot
     * parse (an adversarial test, session 27) */
    if (path && !strpbrk(path, "\n\r")) {
        for (const unsigned char *c = (const unsigned char *)path; *c;) {
            const int n = (*c < 0x20 && *c != '\t') || *c == 0x7f ? 0 : json_utf8_len(c);
            if (n > 0) {
                c += n;
                continue;
            }
            char shown[400];
            size_t k = 0;
            const unsigned char *q = (const unsigned char *)path;
            for (; *q && k + 8 < sizeof shown; q++)
                k += (size_t)(*q >= 0x20 && *q < 0x7f
                                  ? snprintf(shown + k, sizeof shown - k, "%c", *q)
                                  : snprintf(shown + k, sizeof shown - k, "\\x%02x", *q));
            if (*q) k += (size_t)snprintf(shown + k, sizeof shown - k, "...");
            return abl_fail(err, ABL_EINVAL,
                            "%s \"%s\": a file name with a control character (other than a "
                            "tab) or bytes that are not UTF-8 (byte %zu, \\x%02x) is refused "
                            "(the JSON summary and the XDMF sidecar name it); choose another name",
                            role, shown, (size_t)(c - (const unsigned char *)path), *c);
        }
    }
    if (path && strpbrk(path, "\n\r")) {
        char shown[400];
        size_t k = 0;
        const char *c = path;
        for (; *c && k + 6 < sizeof shown; c++) {
            if (*c == '\n' || *c == '\r') {
                shown[k++] = '\\';
                shown[k++] = *c == '\n' ? 'n' : 'r';
            } else {
                shown[k++] = *c;
            }
        }
        if (*c) k += (size_t)snprintf(shown + k, sizeof shown - k, "...");
        shown[k] = '\0';
        return abl_fail(err, ABL_EINVAL,
                        "%s \"%s\": a file name with a line break is refused (the undo logs, "
                        "journals and messages of ablasim hold one name a line); choose a name "
                        "without one (margin: -o NAME.h5 and --nifti PREFIX name its outputs)",
                        role, shown);
    }
    return add(fs, role, path, true, err);
}

static bool same(const fg_entry *a, const fg_entry *b)
{
    if (a->exists && b->exists) return a->dev == b->dev && a->ino == b->ino;
    return strcmp(a->canon, b->canon) == 0;
}

abl_status fileset_check(const abl_fileset *fs, abl_error *err)
{
    for (int i = 0; i < fs->n; i++) {
        if (!fs->e[i].output) continue;
        for (int j = 0; j < fs->n; j++) {
            if (j == i || (fs->e[j].output && j > i)) continue;
            const fg_entry *o = &fs->e[i], *x = &fs->e[j];
            if (!same(o, x)) continue;
            if (!x->output)
                return abl_fail(err, ABL_EINVAL,
                                "%s %s is the %s %s (same file): refusing to overwrite an input; "
                                "choose another output name, or rename the input (a resume's "
                                "output name is its checkpoint's)",
                                o->role, o->path, x->role, x->path);
            return abl_fail(err, ABL_EINVAL,
                            "%s %s and %s %s are the same file: choose distinct names", x->role,
                            x->path, o->role, o->path);
        }
    }
    return ABL_OK;
}

char *fg_realpath(const char *path)
{
    return path && path[0] ? realpath(path, NULL) : NULL;
}

char *fg_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');
    const size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (!d) return NULL;
    if (!slash) d[0] = '.';
    else if (slash == path) d[0] = '/';
    else memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

abl_status fg_refuse_checkpoint_name(const char *role, const char *path, abl_error *err)
{
    static const char suffix[] = ABL_CKPT_SUFFIX;
    const size_t n = strlen(path), k = sizeof suffix - 1;
    struct stat sb;
    if (n < k || strcmp(path + n - k, suffix) != 0 || lstat(path, &sb) != 0) return ABL_OK;
    return abl_fail(err, ABL_EINVAL,
                    "%s %s exists and is named like a checkpoint (an interrupted run's, which "
                    "'ablasim resume %s' continues); it is not replaced: choose another name, "
                    "or remove it first",
                    role, path, path);
}

bool fg_same_file(const char *a, const char *b)
{
    fg_entry x = {0}, y = {0};
    struct stat sa, sb;
    x.exists = stat(a, &sa) == 0;
    y.exists = stat(b, &sb) == 0;
    if (x.exists && y.exists) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    x.canon = canonical(a);
    y.canon = canonical(b);
    bool r = x.canon && y.canon && !strcmp(x.canon, y.canon);
    free(x.canon);
    free(y.canon);
    return r;
}

/* ---- locks -------------------------------------------------------------------------------- */

struct abl_lock {
    int fd;
    char *path;
};

abl_status fg_lock(const char *target, abl_lock **out, abl_error *err)
{
    *out = NULL;
    size_t n = strlen(target) + 6;
    char *path = malloc(n);
    if (!path) return abl_fail(err, ABL_ENOMEM, "out of memory");
    snprintf(path, n, "%s.lock", target);
    /* A lock file another process unlinks between our open and flock is not the lock any
     * more: retry until the inode we hold is the one under the name (a few rounds at most). */
    for (int attempt = 0; attempt < 50; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
            const int e = errno;
            char *dir = fg_dirname(target);
            struct stat dsb;
            /* a missing directory is the usual cause: say so, not only the lock's name (QA,
             * session 29: `margin --nifti missing/p` named the lock file alone) */
            abl_status st =
                e == ENOENT && dir && stat(dir, &dsb) != 0
                    ? abl_fail(err, ABL_EIO,
                               "%s: cannot write there: the directory '%s' does not exist "
                               "(create it first)",
                               target, dir)
                    : abl_fail(err, ABL_EIO, "%s: cannot create the lock file %s (%s)", target,
                               path, strerror(e));
            free(dir);
            free(path);
            return st;
        }
        struct stat fsb;
        if (fstat(fd, &fsb) != 0 || !S_ISREG(fsb.st_mode)) {
            close(fd);
            abl_status st = abl_fail(err, ABL_EIO, "%s: the lock file %s is not a regular file",
                                     target, path);
            free(path);
            return st;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            char buf[32] = "";
            ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
            buf[r > 0 ? r : 0] = '\0';
            long pid = strtol(buf, NULL, 10);
            close(fd);
            abl_status st =
                pid > 0 ? abl_fail(err, ABL_EIO,
                                   "another ablasim process is writing %s (pid %ld); wait for it "
                                   "or stop it (its lock: %s)",
                                   target, pid, path)
                        : abl_fail(err, ABL_EIO,
                                   "another ablasim process is writing %s (its lock: %s)", target,
                                   path);
            free(path);
            return st;
        }
        struct stat psb;
        if (stat(path, &psb) != 0 || psb.st_ino != fsb.st_ino || psb.st_dev != fsb.st_dev) {
            close(fd); /* the holder before us removed it: take the new one */
            continue;
        }
        /* a lock file is empty or holds a pid (ours, or a killed process's): anything else
         * under the name, or a file with a second name (a hard link to an input), is not a
         * lock and is not overwritten (found by a read-only review, session 22: an input hard
         * linked as <output>.lock was replaced by a pid) */
        {
            char old[40] = "";
            const ssize_t r = pread(fd, old, sizeof old - 1, 0);
            old[r > 0 ? r : 0] = '\0';
            size_t k = strspn(old, "0123456789");
            const bool pid_like = r >= 0 && (size_t)r < sizeof old - 1 &&
                                  (old[k] == '\0' || (old[k] == '\n' && old[k + 1] == '\0'));
            if (fsb.st_nlink > 1 || !pid_like) {
                close(fd);
                abl_status st = abl_fail(
                    err, ABL_EIO,
                    "%s: %s exists and is not an ablasim lock file (%s); it is left as it is: "
                    "remove or rename it",
                    target, path,
                    fsb.st_nlink > 1 ? "it has another name, a hard link" : "it holds other data");
                free(path);
                return st;
            }
        }
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
            /* the pid is only for the other process's message: not fatal */
        }
        abl_lock *l = malloc(sizeof *l);
        if (!l) {
            close(fd);
            free(path);
            return abl_fail(err, ABL_ENOMEM, "out of memory");
        }
        l->fd = fd;
        l->path = path;
        *out = l;
        return ABL_OK;
    }
    abl_status st = abl_fail(err, ABL_EIO, "%s: the lock file %s keeps being replaced", target,
                             path);
    free(path);
    return st;
}

void fg_unlock(abl_lock *l)
{
    if (!l) return;
    unlink(l->path); /* while still holding it: a waiter then retries on a fresh file */
    close(l->fd);
    free(l->path);
    free(l);
}

