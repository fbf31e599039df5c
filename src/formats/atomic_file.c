/* atomic_file.c - temporary, fsync, rename, directory fsync (see atomic_file.h). */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int create_fresh(const char *path)
{
    if (unlink(path) != 0 && errno != ENOENT) return -1;
    return open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
}

int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    int r = fsync(fd) != 0 ? errno : 0;
    close(fd);
    return r;
}

void fsync_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (!dir) return;
    if (!slash) memcpy(dir, ".", 2);
    else if (slash == path) memcpy(dir, "/", 2);
    else {
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

char *path_cat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (!s) return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

static int begin(abl_atomic *a, const char *path, const char *suffix, bool keep_open)
{
    memset(a, 0, sizeof *a);
    a->fd = -1;
    a->path = path_cat(path, "");
    a->tmp = path_cat(path, suffix);
    if (!a->path || !a->tmp) return ENOMEM;
    int fd = create_fresh(a->tmp);
    if (fd < 0) {
        int e = errno;
        free(a->tmp); /* nothing of ours to remove */
        a->tmp = NULL;
        return e;
    }
    if (keep_open) a->fd = fd;
    else if (close(fd) != 0) return errno;
    return 0;
}

int atomic_open(abl_atomic *a, const char *path, const char *suffix)
{
    return begin(a, path, suffix, true);
}

int atomic_reserve(abl_atomic *a, const char *path, const char *suffix)
{
    return begin(a, path, suffix, false);
}

FILE *atomic_stream(abl_atomic *a)
{
    if (a->f) return a->f;
    if (a->fd < 0) {
        errno = EBADF;
        return NULL;
    }
    a->f = fdopen(a->fd, "w");
    return a->f;
}

int atomic_write(abl_atomic *a, const void *buf, size_t n)
{
    if (a->fd < 0) return EBADF;
    for (size_t done = 0; done < n;) {
        ssize_t w = write(a->fd, (const char *)buf + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return errno;
        if (w == 0) return ENOSPC;
        done += (size_t)w;
    }
    return 0;
}

int atomic_sync(abl_atomic *a)
{
    if (a->synced) return 0;
    if (!a->tmp) return EBADF;
    int e = 0;
    if (a->f) {
        errno = 0;
        if (fflush(a->f) != 0 || ferror(a->f)) e = errno ? errno : EIO;
        if (!e && fsync(fileno(a->f)) != 0) e = errno;
        errno = 0;
        if (fclose(a->f) != 0 && !e) e = errno ? errno : EIO;
        a->f = NULL;
        a->fd = -1;
    } else if (a->fd >= 0) {
        if (fsync(a->fd) != 0) e = errno;
        if (close(a->fd) != 0 && !e) e = errno;
        a->fd = -1;
    } else {
        e = fsync_path(a->tmp);
    }
    if (!e) a->synced = true;
    return e;
}

int atomic_rename(abl_atomic *a)
{
    if (!a->synced || !a->tmp) return EINVAL;
    if (rename(a->tmp, a->path) != 0) return errno;
    a->renamed = true;
    return 0;
}

int atomic_commit(abl_atomic *a)
{
    int e = atomic_sync(a);
    if (!e) e = atomic_rename(a);
    if (!e) fsync_dir_of(a->path);
    return e;
}

void atomic_abort(abl_atomic *a)
{
    if (a->f) fclose(a->f);
    else if (a->fd >= 0) close(a->fd);
    a->f = NULL;
    a->fd = -1;
    if (a->tmp && !a->renamed) unlink(a->tmp);
    free(a->tmp);
    free(a->path);
    a->tmp = a->path = NULL;
}
