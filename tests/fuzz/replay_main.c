/* replay_main.c - runs a libFuzzer harness over corpus files without libFuzzer (make check).
 *
 * Linked with one harness (tests/fuzz/fuzz_*.c) and built with the project's own compiler and
 * flags, so CI replays the committed corpus with gcc, and under make check SANITIZE=1 with
 * ASan/UBSan. Usage: replay_<harness> [-v] DIR_OR_FILE...; directories are read in name order,
 * hidden files skipped.
 *
 * Inputs run in forked children, in batches of REPLAY_BATCH (one process per input would cost
 * a sanitizer start-up and leak check each, tens of seconds over the corpus). A child fails when
 * it dies by a signal, exits non-zero (ASan, LSan at its exit), runs past the time limit on an
 * input (a hang) or writes anything to stdout or stderr: harnesses never print, so output means
 * a library printed or a sanitizer reported (UBSan in recover mode). A failed batch is run
 * again one input per child, so every failure names its file and shows its output; a batch
 * that fails while each of its inputs passes alone is a failure too (state carried from one
 * input to the next, which libFuzzer would also meet).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs per child process. */
#define REPLAY_BATCH 32

/* Seconds one input may take. Generous: inputs take milliseconds; this only turns a hang into
 * a failure instead of a stuck make check. */
#define REPLAY_TIMEOUT_S 120

/* Child output shown per failure. */
#define SHOW_BYTES 8192

typedef struct {
    char **v;
    size_t n, cap;
} name_list;

static void add_name(name_list *l, const char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v) {
            perror("replay");
            exit(2);
        }
    }
    l->v[l->n] = strdup(s);
    if (!l->v[l->n]) {
        perror("replay");
        exit(2);
    }
    l->n++;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files of a directory (regular files, not hidden), in name order; a file argument as is. */
static int collect(const char *arg, name_list *out)
{
    struct stat sb;
    if (stat(arg, &sb) != 0) {
        fprintf(stderr, "replay: %s: %s\n", arg, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        add_name(out, arg);
        return 0;
    }
    DIR *d = opendir(arg);
    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", arg, strerror(errno));
        return -1;
    }
    size_t first = out->n;
    char path[4096];
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", arg, e->d_name);
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) add_name(out, path);
    }
    closedir(d);
    qsort(out->v + first, out->n - first, sizeof *out->v, cmp_str);
    return 0;
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    /* exactly size bytes, so ASan catches a harness reading past the input */
    unsigned char *exact = malloc(n ? n : 1);
    if (exact) memcpy(exact, buf, n);
    free(buf);
    *size = n;
    return exact;
}

/* Run files[0..n-1] in one child. Returns 0 when it passed; otherwise 1, and *why and the
 * child's output (in out_fd) say what happened. */
static int run_child(char **files, size_t n, int out_fd, char *why, size_t whylen)
{
    if (ftruncate(out_fd, 0) != 0 || lseek(out_fd, 0, SEEK_SET) != 0) {
        perror("replay: scratch file");
        exit(2);
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("replay: fork");
        exit(2);
    }
    if (pid == 0) {
        dup2(out_fd, STDOUT_FILENO);
        dup2(out_fd, STDERR_FILENO);
        for (size_t i = 0; i < n; i++) {
            size_t size = 0;
            unsigned char *data = read_all(files[i], &size);
            if (!data) {
                fprintf(stderr, "replay: %s: cannot read: %s\n", files[i], strerror(errno));
                exit(3);
            }
            alarm(REPLAY_TIMEOUT_S); /* SIGALRM ends a hung input */
            LLVMFuzzerTestOneInput(data, size);
            free(data);
        }
        fflush(NULL);
        exit(0); /* atexit handlers and LeakSanitizer run here */
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            perror("replay: waitpid");
            exit(2);
        }
    off_t printed = lseek(out_fd, 0, SEEK_END);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && printed == 0) return 0;
    if (WIFSIGNALED(status))
        snprintf(why, whylen, "%s",
                 WTERMSIG(status) == SIGALRM ? "hang (time limit)" : strsignal(WTERMSIG(status)));
    else if (WEXITSTATUS(status) != 0)
        snprintf(why, whylen, "exit status %d", WEXITSTATUS(status));
    else
        snprintf(why, whylen, "printed %lld bytes (harnesses and libraries must be silent)",
                 (long long)printed);
    return 1;
}

static void show_output(int out_fd)
{
    off_t printed = lseek(out_fd, 0, SEEK_END);
    if (printed <= 0) return;
    char buf[SHOW_BYTES];
    lseek(out_fd, 0, SEEK_SET);
    ssize_t r = read(out_fd, buf, sizeof buf);
    if (r > 0) fwrite(buf, 1, (size_t)r, stderr);
    if (printed > (off_t)sizeof buf)
        fprintf(stderr, "... (%lld bytes in all)\n", (long long)printed);
}

/* A batch; on failure each input alone. Returns the number of failures. */
static size_t run_batch(char **files, size_t n, int out_fd)
{
    char why[256];
    if (run_child(files, n, out_fd, why, sizeof why) == 0) return 0;
    if (n == 1) {
        fprintf(stderr, "FAIL %s: %s\n", files[0], why);
        show_output(out_fd);
        return 1;
    }
    size_t failures = 0;
    for (size_t i = 0; i < n; i++)
        failures += run_batch(files + i, 1, out_fd);
    if (failures) return failures;
    fprintf(stderr, "FAIL %s .. %s: %s when run together in one process, but each passes alone\n",
            files[0], files[n - 1], why);
    run_child(files, n, out_fd, why, sizeof why);
    show_output(out_fd);
    return 1;
}

int main(int argc, char **argv)
{
    int verbose = 0, first = 1;
    if (argc > 1 && !strcmp(argv[1], "-v")) {
        verbose = 1;
        first = 2;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: %s [-v] CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    name_list files = {0};
    for (int i = first; i < argc; i++)
        if (collect(argv[i], &files) != 0) return 2;

    /* scratch file for the children's output, unlinked at once */
    const char *tmp = getenv("TMPDIR");
    char scratch[4096];
    snprintf(scratch, sizeof scratch, "%s/ablasim-replay-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int out_fd = mkstemp(scratch);
    if (out_fd < 0) {
        perror("replay: mkstemp");
        return 2;
    }
    unlink(scratch);

    const char *name = strrchr(argv[0], '/');
    name = name ? name + 1 : argv[0];
    if (!strncmp(name, "replay_", 7)) name += 7;
    size_t failures = 0;
    for (size_t i = 0; i < files.n; i += REPLAY_BATCH) {
        size_t n = files.n - i < REPLAY_BATCH ? files.n - i : REPLAY_BATCH;
        if (verbose)
            for (size_t k = 0; k < n; k++)
                fprintf(stderr, "%s\n", files.v[i + k]);
        failures += run_batch(files.v + i, n, out_fd);
    }
    for (size_t i = 0; i < files.n; i++)
        free(files.v[i]);
    free(files.v);
    close(out_fd);
    printf("fuzz replay %s: %zu inputs, %zu failures\n", name, files.n, failures);
    return failures ? 1 : 0;
}
