/* fuzz_common.h - helpers shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c).
 *
 * The same harness source is built two ways: with clang -fsanitize=fuzzer (make fuzz) and with
 * the project's gcc flags plus replay_main.c (make check replays the committed corpus). So this
 * is plain C11 + POSIX and never prints: a harness reports a problem only by crashing (abort),
 * which both libFuzzer and the replay driver catch and attribute to the input.
 */
#ifndef ABLASIM_FUZZ_COMMON_H
#define ABLASIM_FUZZ_COMMON_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline int fz_is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Repository root: $ABLASIM_ROOT (set by make check and make fuzz), else the first ancestor of
 * the harness binary that holds configs/tissues.yaml (build/fuzz/fuzz_x, build/rel/tests/...),
 * else ".". The scenario harness resolves tissues_file against <root>/configs. */
static inline const char *fz_root(void)
{
    static char root[PATH_MAX];
    if (root[0]) return root;
    char probe[PATH_MAX + 64];
    const char *env = getenv("ABLASIM_ROOT");
    if (env && *env && strlen(env) < sizeof root) {
        snprintf(probe, sizeof probe, "%s/configs/tissues.yaml", env);
        if (fz_is_file(probe)) {
            snprintf(root, sizeof root, "%s", env);
            return root;
        }
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        for (char *slash = strrchr(exe, '/'); slash; slash = strrchr(exe, '/')) {
            *slash = '\0';
            snprintf(probe, sizeof probe, "%s/configs/tissues.yaml", exe[0] ? exe : "/");
            if (fz_is_file(probe)) {
                snprintf(root, sizeof root, "%s", exe[0] ? exe : "/");
                return root;
            }
        }
    }
    snprintf(root, sizeof root, ".");
    return root;
}

/* Private scratch directory of this process, $TMPDIR/ablasim-fuzz-<pid>-XXXXXX (or /tmp). The
 * harnesses reuse fixed names inside it. A process that crashes (the point of fuzzing) or that
 * libFuzzer ends with _exit leaves its directory behind, so each new one first removes those
 * of processes that no longer exist. */
static inline char *fz_dirbuf(void)
{
    static char dir[PATH_MAX];
    return dir;
}

static inline void fz_remove_dir(const char *dir)
{
    static const char *const names[] = {"in.h5",      "in.nii",          "in.nii.gz",
                                        "out.h5",     "out.h5.tmp",      "out.nii",
                                        "out.nii.gz", "out.nii.tmp.nii", "out.nii.gz.tmp.nii.gz",
                                        NULL};
    char p[PATH_MAX + 340]; /* a directory from fz_remove_stale, a name */
    for (int i = 0; names[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static inline void fz_cleanup(void)
{
    fz_remove_dir(fz_dirbuf());
}

static inline void fz_remove_stale(const char *base)
{
    DIR *d = opendir(base);
    if (!d) return;
    char p[PATH_MAX + 300];
    for (struct dirent *e; (e = readdir(d));) {
        long pid;
        if (sscanf(e->d_name, "ablasim-fuzz-%ld-", &pid) != 1 || pid <= 0) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours */
        snprintf(p, sizeof p, "%s/%s", base, e->d_name);
        fz_remove_dir(p);
    }
    closedir(d);
}

static inline const char *fz_tmpdir(void)
{
    char *dir = fz_dirbuf();
    if (dir[0]) return dir;
    const char *base = getenv("TMPDIR");
    if (!base || !*base || strlen(base) > PATH_MAX - 64) base = "/tmp";
    fz_remove_stale(base);
    snprintf(dir, PATH_MAX, "%s/ablasim-fuzz-%ld-XXXXXX", base, (long)getpid());
    if (!mkdtemp(dir)) abort(); /* no scratch space: nothing can be tested */
    atexit(fz_cleanup);
    return dir;
}

/* Write the input to <scratch>/name and return the path (static buffer). */
static inline const char *fz_write_file(const char *name, const uint8_t *data, size_t size)
{
    static char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", fz_tmpdir(), name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) abort();
    for (size_t done = 0; done < size;) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) abort();
        done += (size_t)w;
    }
    if (close(fd) != 0) abort();
    return path;
}

/* The lowest free file descriptor. A reader that leaks a descriptor makes it grow, so the
 * harnesses compare it before and after each call (nothing else opens files meanwhile). */
static inline int fz_lowest_free_fd(void)
{
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0) abort();
    close(fd);
    return fd;
}

/* Output capture. Library code must never print (main() alone reports errors), so every call
 * under test runs between fz_capture_begin() and fz_capture_end(), which aborts, after showing
 * what was printed, when anything was. stdout and stderr are switched at the FILE level (glibc
 * lets a program assign them); the sanitizers write to file descriptor 2 directly, so their
 * reports are never captured. */
static inline FILE **fz_saved(void)
{
    static FILE *saved[3]; /* stdout, stderr, capture file */
    return saved;
}

static inline void fz_capture_begin(void)
{
    FILE **s = fz_saved();
    if (!s[2] && !(s[2] = tmpfile())) abort();
    if (fflush(s[2]) != 0 || ftruncate(fileno(s[2]), 0) != 0) abort();
    rewind(s[2]);
    s[0] = stdout;
    s[1] = stderr;
    stdout = s[2];
    stderr = s[2];
}

static inline void fz_capture_end(void)
{
    FILE **s = fz_saved();
    fflush(s[2]);
    long n = ftell(s[2]);
    stdout = s[0];
    stderr = s[1];
    if (n > 0) {
        char buf[4096];
        rewind(s[2]);
        size_t r = fread(buf, 1, sizeof buf, s[2]);
        fprintf(stderr, "fuzz harness: the code under test printed %ld bytes:\n", n);
        fwrite(buf, 1, r, stderr);
        fflush(stderr);
        abort();
    }
}

/* NUL-terminated copy of the input (the parsers take C strings). */
static inline char *fz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
