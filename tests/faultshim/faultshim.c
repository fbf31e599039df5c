/* faultshim.c - fault injection for the data-safety suite (tests/unit/test_safety.c): an
 * LD_PRELOAD library that makes one chosen call through which a command changes files fail, as a
 * failing disk, a full quota, a read-only remount or an NFS server would.
 *
 * Interposed (dlsym RTLD_NEXT), by class:
 *   open      open, open64, openat, openat64, creat, creat64 with O_WRONLY/O_RDWR/O_CREAT/O_TRUNC;
 *             fopen, fopen64 with a mode other than "r"/"rb"
 *   write     write, pwrite, pwrite64, writev on a descriptor opened here under the working
 *             directory, and every flush of a stdio stream opened for writing (below)
 *   fsync     fsync, fdatasync of such a descriptor that is not a directory (directory syncs are
 *             best effort by design: atomic_file.h fsync_dir_of)
 *   close     close of a descriptor opened for writing (and fclose of a write stream); the
 *             descriptor is released before the error is returned, as Linux does
 *   rename    rename, renameat, renameat2
 *   unlink    unlink, unlinkat, remove
 *   truncate  ftruncate, ftruncate64, truncate, truncate64
 *   link      link, linkat, symlink, symlinkat
 *   mkdir     mkdir, mkdirat
 * Only calls on paths under the working directory at start (relative names, or absolute ones
 * below it) and descriptors opened on such paths are eligible: the system's files (/dev/null,
 * /proc, libraries, /tmp outside the working directory) never fail.
 *
 * stdio: glibc writes a FILE's buffer with its internal write, which no preload sees. A stream
 * opened for writing on an eligible file (fopen, fopen64, fdopen of an eligible descriptor) is
 * therefore a fopencookie stream whose write, seek and close go through the interposed calls;
 * fileno() gives its descriptor (fsync(fileno(f)) keeps working).
 *
 * Environment:
 *   ABLASIM_FAULT_COUNT=FILE   at exit, write "CLASS COUNT" per class of the eligible calls made
 *   ABLASIM_FAULT_CALLS=a,b    classes taking part in the numbering below (default: all)
 *   ABLASIM_FAULT_AT=N         the N-th (1-based) eligible call of those classes fails and does
 *                              nothing (close: releases the descriptor, then fails)
 *   ABLASIM_FAULT_ERRNO=NAME   its errno: EIO (default), ENOSPC, EDQUOT, EROFS, EACCES, EPERM,
 *                              EFBIG, or a number
 *   ABLASIM_FAULT_LOG=FILE     when the fault fires, append "CLASS PATH" there (for a descriptor
 *                              call the file it is open on)
 *   ABLASIM_FAULT_KILL=1       instead of failing, the process kills itself (SIGKILL) just before
 *                              that call: a crash at that point of the command
 *   ABLASIM_FAULT_SIGNAL=NAME  instead of failing, the process sends itself this signal (TERM,
 *                              INT, or a number) just before that call, which then runs as
 *                              asked: a user's stop request (Ctrl-C, a batch system's SIGTERM)
 *                              at that point of the command
 *   ABLASIM_FAULT_NOLINK=1     every hard link (link, linkat) under the working directory fails
 *                              with EPERM, as on a file system without hard links (not counted)
 * Counters are atomics (OpenMP threads may write); the hot paths take no lock and do not
 * allocate (the table of cookie streams is locked only on fopen/fdopen/fileno/fclose). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { C_OPEN, C_WRITE, C_FSYNC, C_CLOSE, C_RENAME, C_UNLINK, C_TRUNCATE, C_LINK, C_MKDIR, NCLASS };
static const char *const class_name[NCLASS] = {"open",   "write",    "fsync", "close", "rename",
                                               "unlink", "truncate", "link",  "mkdir"};

/* descriptors opened on eligible paths: bit 1 eligible, bit 2 opened for writing */
#define MAX_FD 65536
enum { FD_MINE = 1, FD_WRITE = 2 };
static _Atomic unsigned char fd_flags[MAX_FD];

static char cwd[4096];
static size_t cwd_len;
static unsigned class_mask = (1u << NCLASS) - 1;
static long fault_at = -1; /* < 0: count only */
static int fault_errno = EIO;
static bool fault_kill = false;
static int fault_signal = 0; /* 0: none */
static bool no_links = false;
static atomic_long counts[NCLASS];
static atomic_long numbered; /* eligible calls of the classes in class_mask */
static const char *count_file, *log_file;

/* the next definitions, resolved lazily (a library's constructor may call before ours) */
#define REAL(name, ret, ...)                                                                       \
    static ret (*real_##name)(__VA_ARGS__);                                                        \
    static ret (*get_##name(void))(__VA_ARGS__)                                                    \
    {                                                                                              \
        if (!real_##name) real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name);              \
        return real_##name;                                                                        \
    }
REAL(open, int, const char *, int, ...)
REAL(open64, int, const char *, int, ...)
REAL(openat, int, int, const char *, int, ...)
REAL(openat64, int, int, const char *, int, ...)
REAL(fopen, FILE *, const char *, const char *)
REAL(fopen64, FILE *, const char *, const char *)
REAL(fdopen, FILE *, int, const char *)
REAL(fileno, int, FILE *)
REAL(write, ssize_t, int, const void *, size_t)
REAL(pwrite, ssize_t, int, const void *, size_t, off_t)
REAL(pwrite64, ssize_t, int, const void *, size_t, off_t)
REAL(writev, ssize_t, int, const struct iovec *, int)
REAL(fsync, int, int)
REAL(fdatasync, int, int)
REAL(close, int, int)
REAL(rename, int, const char *, const char *)
REAL(renameat, int, int, const char *, int, const char *)
REAL(renameat2, int, int, const char *, int, const char *, unsigned)
REAL(unlink, int, const char *)
REAL(unlinkat, int, int, const char *, int)
REAL(remove, int, const char *)
REAL(ftruncate, int, int, off_t)
REAL(ftruncate64, int, int, off_t)
REAL(truncate, int, const char *, off_t)
REAL(truncate64, int, const char *, off_t)
REAL(link, int, const char *, const char *)
REAL(linkat, int, int, const char *, int, const char *, int)
REAL(symlink, int, const char *, const char *)
REAL(symlinkat, int, const char *, int, const char *)
REAL(mkdir, int, const char *, mode_t)
REAL(mkdirat, int, int, const char *, mode_t)
REAL(dup2, int, int, int)
REAL(dup3, int, int, int, int)

static int parse_errno(const char *s)
{
    static const struct {
        const char *name;
        int value;
    } t[] = {{"EIO", EIO},       {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT}, {"EROFS", EROFS},
             {"EACCES", EACCES}, {"EPERM", EPERM},   {"EFBIG", EFBIG},   {"EINTR", EINTR}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(s, t[i].name)) return t[i].value;
    const int v = atoi(s);
    return v > 0 ? v : EIO;
}

__attribute__((constructor)) static void shim_init(void)
{
    if (!getcwd(cwd, sizeof cwd)) cwd[0] = '\0';
    cwd_len = strlen(cwd);
    count_file = getenv("ABLASIM_FAULT_COUNT");
    log_file = getenv("ABLASIM_FAULT_LOG");
    const char *at = getenv("ABLASIM_FAULT_AT");
    if (at && *at) fault_at = atol(at);
    const char *en = getenv("ABLASIM_FAULT_ERRNO");
    if (en && *en) fault_errno = parse_errno(en);
    const char *kl = getenv("ABLASIM_FAULT_KILL");
    fault_kill = kl && !strcmp(kl, "1");
    const char *sg = getenv("ABLASIM_FAULT_SIGNAL");
    if (sg && *sg)
        fault_signal = !strcmp(sg, "TERM") ? SIGTERM : !strcmp(sg, "INT") ? SIGINT : atoi(sg);
    const char *nl = getenv("ABLASIM_FAULT_NOLINK");
    no_links = nl && !strcmp(nl, "1");
    const char *calls = getenv("ABLASIM_FAULT_CALLS");
    if (calls && *calls) {
        class_mask = 0;
        for (int c = 0; c < NCLASS; c++) {
            const size_t n = strlen(class_name[c]);
            for (const char *p = calls; (p = strstr(p, class_name[c])); p += n)
                if ((p == calls || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
                    class_mask |= 1u << c;
        }
    }
}

/* write all of s to the file name (append), with the real calls: used from the fault path
 * and at exit, so no stdio and no allocation */
static void append_line(const char *name, const char *s)
{
    const int fd = get_open()(name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;
    for (size_t done = 0, n = strlen(s); done < n;) {
        const ssize_t w = get_write()(fd, s + done, n - done);
        if (w <= 0) break;
        done += (size_t)w;
    }
    get_close()(fd);
}

__attribute__((destructor)) static void shim_fini(void)
{
    if (!count_file) return;
    char buf[512];
    size_t len = 0;
    for (int c = 0; c < NCLASS && len < sizeof buf; c++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s %ld\n", class_name[c],
                                atomic_load(&counts[c]));
    (void)get_unlink()(count_file);
    append_line(count_file, buf);
}

/* Counts one eligible call of class c; true when it is the one to fail (errno is then set and
 * the caller returns -1 without doing anything). what names the path, or NULL with fd. */
static bool fault(int c, const char *what, int fd)
{
    atomic_fetch_add(&counts[c], 1);
    if (fault_at < 0 || !(class_mask & (1u << c))) return false;
    if (atomic_fetch_add(&numbered, 1) + 1 != fault_at) return false;
    if (log_file) {
        char line[4200];
        char fdpath[64], target[4096] = "?";
        if (!what) { /* the file behind the descriptor (readlink is async-signal-safe) */
            snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
            const ssize_t n = readlink(fdpath, target, sizeof target - 1);
            target[n > 0 ? n : 1] = '\0';
            what = target;
        }
        snprintf(line, sizeof line, "%s %s\n", class_name[c], what);
        append_line(log_file, line);
    }
    if (fault_kill) raise(SIGKILL);
    if (fault_signal > 0) {
        raise(fault_signal); /* handled or not, the call itself goes ahead */
        return false;
    }
    errno = fault_errno;
    return true;
}

/* a path under the working directory the shim started in */
static bool eligible_path(const char *p)
{
    if (!p || !p[0] || !cwd_len) return false;
    if (p[0] != '/') return strncmp(p, "../", 3) != 0;
    return !strncmp(p, cwd, cwd_len) && (p[cwd_len] == '/' || p[cwd_len] == '\0');
}

static bool eligible_at(int dirfd, const char *p)
{
    if (p && p[0] == '/') return eligible_path(p);
    return (dirfd == AT_FDCWD || (dirfd >= 0 && dirfd < MAX_FD && (fd_flags[dirfd] & FD_MINE))) &&
           eligible_path(p);
}

static unsigned flags_of(int fd)
{
    return fd >= 0 && fd < MAX_FD ? atomic_load(&fd_flags[fd]) : 0;
}

static void set_flags(int fd, unsigned f)
{
    if (fd >= 0 && fd < MAX_FD) atomic_store(&fd_flags[fd], (unsigned char)f);
}

static bool writes(int flags)
{
    return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0;
}

/* ---- open ---------------------------------------------------------------------------------- */

static int do_openat(int dirfd, const char *path, int flags, mode_t mode, bool at, bool l64)
{
    const bool mine = eligible_at(dirfd, path);
    if (mine && writes(flags) && fault(C_OPEN, path, -1)) return -1;
    int fd;
    if (at)
        fd =
            l64 ? get_openat64()(dirfd, path, flags, mode) : get_openat()(dirfd, path, flags, mode);
    else
        fd = l64 ? get_open64()(path, flags, mode) : get_open()(path, flags, mode);
    if (fd >= 0) set_flags(fd, mine ? FD_MINE | ((flags & (O_WRONLY | O_RDWR)) ? FD_WRITE : 0) : 0);
    return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & __O_TMPFILE) == __O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    const mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return do_openat(AT_FDCWD, path, flags, m, false, false);
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    const mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return do_openat(AT_FDCWD, path, flags, m, false, true);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    const mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return do_openat(dirfd, path, flags, m, true, false);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    const mode_t m = mode_arg(flags, ap);
    va_end(ap);
    return do_openat(dirfd, path, flags, m, true, true);
}

int creat(const char *path, mode_t mode)
{
    return do_openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode, false, false);
}

int creat64(const char *path, mode_t mode)
{
    return do_openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode, false, true);
}

/* ---- stdio streams through the interposed calls ------------------------------------------- */

#define MAX_STREAMS 128
static struct {
    FILE *f;
    int fd;
} streams[MAX_STREAMS];
static pthread_mutex_t streams_lock = PTHREAD_MUTEX_INITIALIZER;

static ssize_t ck_write(void *cookie, const char *buf, size_t n)
{
    const int fd = (int)(intptr_t)cookie;
    size_t done = 0;
    while (done < n) {
        const ssize_t w = write(fd, buf + done, n - done); /* the interposed write */
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return done ? (ssize_t)done : -1;
        done += (size_t)w;
    }
    return (ssize_t)done;
}

static ssize_t ck_read(void *cookie, char *buf, size_t n)
{
    return read((int)(intptr_t)cookie, buf, n);
}

static int ck_seek(void *cookie, off64_t *pos, int whence)
{
    const off_t r = lseek((int)(intptr_t)cookie, (off_t)*pos, whence);
    if (r < 0) return -1;
    *pos = r;
    return 0;
}

static int ck_close(void *cookie)
{
    const int fd = (int)(intptr_t)cookie;
    pthread_mutex_lock(&streams_lock);
    for (int i = 0; i < MAX_STREAMS; i++)
        if (streams[i].f && streams[i].fd == fd) streams[i].f = NULL;
    pthread_mutex_unlock(&streams_lock);
    return close(fd); /* the interposed close */
}

/* A cookie stream on fd (ours from here; closed with the stream), or NULL with errno. */
static FILE *cookie_stream(int fd, const char *mode)
{
    const cookie_io_functions_t io = {ck_read, ck_write, ck_seek, ck_close};
    FILE *f = fopencookie((void *)(intptr_t)fd, mode, io);
    if (!f) return NULL;
    pthread_mutex_lock(&streams_lock);
    for (int i = 0; i < MAX_STREAMS; i++)
        if (!streams[i].f) {
            streams[i].f = f;
            streams[i].fd = fd;
            break;
        }
    pthread_mutex_unlock(&streams_lock);
    return f;
}

static bool mode_writes(const char *mode)
{
    return mode && (strchr(mode, 'w') || strchr(mode, 'a') || strchr(mode, '+'));
}

static FILE *do_fopen(const char *path, const char *mode, bool l64)
{
    if (!mode_writes(mode) || !eligible_path(path))
        return l64 ? get_fopen64()(path, mode) : get_fopen()(path, mode);
    int flags = strchr(mode, '+') ? O_RDWR : O_WRONLY;
    if (mode[0] == 'w') flags |= O_CREAT | O_TRUNC;
    if (mode[0] == 'a') flags |= O_CREAT | O_APPEND;
    if (strchr(mode, 'x')) flags |= O_EXCL;
    if (strchr(mode, 'e')) flags |= O_CLOEXEC;
    const int fd = do_openat(AT_FDCWD, path, flags, 0666, false, l64);
    if (fd < 0) return NULL;
    FILE *f = cookie_stream(fd, mode);
    if (!f) {
        const int e = errno;
        get_close()(fd);
        set_flags(fd, 0);
        errno = e;
    }
    return f;
}

FILE *fopen(const char *path, const char *mode)
{
    return do_fopen(path, mode, false);
}

FILE *fopen64(const char *path, const char *mode)
{
    return do_fopen(path, mode, true);
}

FILE *fdopen(int fd, const char *mode)
{
    if (!mode_writes(mode) || !(flags_of(fd) & FD_MINE)) return get_fdopen()(fd, mode);
    return cookie_stream(fd, mode);
}

int fileno(FILE *f)
{
    int fd = -1;
    pthread_mutex_lock(&streams_lock);
    for (int i = 0; i < MAX_STREAMS && fd < 0; i++)
        if (streams[i].f == f) fd = streams[i].fd;
    pthread_mutex_unlock(&streams_lock);
    return fd >= 0 ? fd : get_fileno()(f);
}

/* ---- descriptor calls ---------------------------------------------------------------------- */

ssize_t write(int fd, const void *buf, size_t n)
{
    if ((flags_of(fd) & FD_MINE) && fault(C_WRITE, NULL, fd)) return -1;
    return get_write()(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if ((flags_of(fd) & FD_MINE) && fault(C_WRITE, NULL, fd)) return -1;
    return get_pwrite()(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    if ((flags_of(fd) & FD_MINE) && fault(C_WRITE, NULL, fd)) return -1;
    return get_pwrite64()(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    if ((flags_of(fd) & FD_MINE) && fault(C_WRITE, NULL, fd)) return -1;
    return get_writev()(fd, iov, cnt);
}

static bool syncs_file(int fd)
{
    struct stat sb;
    return (flags_of(fd) & FD_MINE) && fstat(fd, &sb) == 0 && !S_ISDIR(sb.st_mode);
}

int fsync(int fd)
{
    if (syncs_file(fd) && fault(C_FSYNC, NULL, fd)) return -1;
    return get_fsync()(fd);
}

int fdatasync(int fd)
{
    if (syncs_file(fd) && fault(C_FSYNC, NULL, fd)) return -1;
    return get_fdatasync()(fd);
}

int close(int fd)
{
    const unsigned f = flags_of(fd);
    set_flags(fd, 0);
    const bool fail = (f & FD_MINE) && (f & FD_WRITE) && fault(C_CLOSE, NULL, fd);
    const int r = get_close()(fd);
    if (fail) {
        errno = fault_errno;
        return -1;
    }
    return r;
}

int dup2(int from, int to)
{
    const int r = get_dup2()(from, to);
    if (r >= 0 && from != to) set_flags(r, flags_of(from));
    return r;
}

int dup3(int from, int to, int flags)
{
    const int r = get_dup3()(from, to, flags);
    if (r >= 0) set_flags(r, flags_of(from));
    return r;
}

int ftruncate(int fd, off_t len)
{
    if ((flags_of(fd) & FD_MINE) && fault(C_TRUNCATE, NULL, fd)) return -1;
    return get_ftruncate()(fd, len);
}

int ftruncate64(int fd, off_t len)
{
    if ((flags_of(fd) & FD_MINE) && fault(C_TRUNCATE, NULL, fd)) return -1;
    return get_ftruncate64()(fd, len);
}

/* ---- path calls ---------------------------------------------------------------------------- */

int truncate(const char *path, off_t len)
{
    if (eligible_path(path) && fault(C_TRUNCATE, path, -1)) return -1;
    return get_truncate()(path, len);
}

int truncate64(const char *path, off_t len)
{
    if (eligible_path(path) && fault(C_TRUNCATE, path, -1)) return -1;
    return get_truncate64()(path, len);
}

int rename(const char *from, const char *to)
{
    if ((eligible_path(from) || eligible_path(to)) && fault(C_RENAME, to, -1)) return -1;
    return get_rename()(from, to);
}

int renameat(int fd1, const char *from, int fd2, const char *to)
{
    if ((eligible_at(fd1, from) || eligible_at(fd2, to)) && fault(C_RENAME, to, -1)) return -1;
    return get_renameat()(fd1, from, fd2, to);
}

int renameat2(int fd1, const char *from, int fd2, const char *to, unsigned flags)
{
    if ((eligible_at(fd1, from) || eligible_at(fd2, to)) && fault(C_RENAME, to, -1)) return -1;
    return get_renameat2()(fd1, from, fd2, to, flags);
}

int unlink(const char *path)
{
    if (eligible_path(path) && fault(C_UNLINK, path, -1)) return -1;
    return get_unlink()(path);
}

int unlinkat(int dirfd, const char *path, int flags)
{
    if (eligible_at(dirfd, path) && fault(C_UNLINK, path, -1)) return -1;
    return get_unlinkat()(dirfd, path, flags);
}

int remove(const char *path)
{
    if (eligible_path(path) && fault(C_UNLINK, path, -1)) return -1;
    return get_remove()(path);
}

int link(const char *from, const char *to)
{
    if (no_links && eligible_path(to)) {
        errno = EPERM;
        return -1;
    }
    if (eligible_path(to) && fault(C_LINK, to, -1)) return -1;
    return get_link()(from, to);
}

int linkat(int fd1, const char *from, int fd2, const char *to, int flags)
{
    if (no_links && eligible_at(fd2, to)) {
        errno = EPERM;
        return -1;
    }
    if (eligible_at(fd2, to) && fault(C_LINK, to, -1)) return -1;
    return get_linkat()(fd1, from, fd2, to, flags);
}

int symlink(const char *target, const char *path)
{
    if (eligible_path(path) && fault(C_LINK, path, -1)) return -1;
    return get_symlink()(target, path);
}

int symlinkat(const char *target, int dirfd, const char *path)
{
    if (eligible_at(dirfd, path) && fault(C_LINK, path, -1)) return -1;
    return get_symlinkat()(target, dirfd, path);
}

int mkdir(const char *path, mode_t mode)
{
    if (eligible_path(path) && fault(C_MKDIR, path, -1)) return -1;
    return get_mkdir()(path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
    if (eligible_at(dirfd, path) && fault(C_MKDIR, path, -1)) return -1;
    return get_mkdirat()(dirfd, path, mode);
}
