/* test_safety.c - "no command ever destroys or corrupts a file it was not asked to write"
 * (issue 14, docs/RELIABILITY.md). The fault suite beside the bad-input catalogue:
 *   - an interrupted commit (crash between the renames of .h5, .json, .xdmf) is completed by
 *     output_recover, at every point of the three renames;
 *   - SIGKILL at 20 random moments of a run that replaces an older result: after each, the old
 *     set is intact or the new set is complete (the three files share one run_id, complete = 1),
 *     and the next run succeeds;
 *   - property: for every pair (output-like name of a run, input of that run) spelled plainly,
 *     through a symlink, a hard link or ./x/../, the run refuses and every input is unchanged;
 *   - two processes writing one output: the second fails at once naming the first's pid and
 *     touches nothing of its files. */
#define _DEFAULT_SOURCE /* usleep */
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ablasim/mesh.h"
#include "ablasim/output.h"
#include "testutil.h"

/* ---- interrupted commit ------------------------------------------------------------------- */

/* For k = 0..3 renames done before the "crash": output_recover finishes the rest, the set is
 * the new one and no temporary or marker remains. Both temporaries the marker can name (.tmp of
 * a plain run, .part of a checkpointed one) are covered; a marker that is not ablasim's is
 * refused and nothing is renamed. */
static void test_commit_recovery(void)
{
    char dir[600], p[16][800];
    tu_subdir(dir, sizeof dir, "commit");
    const char *names[] = {"r.h5", "r.json", "r.xdmf", "r.h5.tmp", "r.json.tmp", "r.xdmf.tmp",
                           "r.h5.commit", "r.h5.part"};
    for (int i = 0; i < 8; i++) snprintf(p[i], sizeof p[i], "%s/%s", dir, names[i]);
    for (int which = 0; which < 2; which++)
        for (int k = 0; k <= 3; k++) {
            tu_spit(p[0], "old h5");
            tu_spit(p[1], "old json");
            tu_spit(p[2], "old xdmf");
            tu_spit(which ? p[7] : p[3], "new h5");
            tu_spit(p[4], "new json");
            tu_spit(p[5], "new xdmf");
            tu_spit(p[6], which ? "ablasim-commit 1 part 0123456789abcdef\n"
                            : "ablasim-commit 1 tmp 0123456789abcdef\n");
            const char *from[3] = {which ? p[7] : p[3], p[4], p[5]}, *to[3] = {p[0], p[1], p[2]};
            for (int i = 0; i < k; i++) CU_ASSERT_FATAL(rename(from[i], to[i]) == 0);
            abl_error err = {0};
            bool rec = false;
            CU_ASSERT_EQUAL(output_recover(p[0], &rec, &err), ABL_OK);
            CU_ASSERT(rec);
            const char *want[3] = {"new h5", "new json", "new xdmf"};
            for (int i = 0; i < 3; i++) {
                char *t = tu_slurp(to[i]);
                CU_ASSERT(t && !strcmp(t, want[i]));
                free(t);
                CU_ASSERT(!tu_lexists(from[i]));
            }
            CU_ASSERT(!tu_lexists(p[6]));
        }
    /* no marker: nothing to do, nothing touched */
    abl_error err = {0};
    bool rec = true;
    tu_spit(p[3], "a leftover temporary");
    CU_ASSERT_EQUAL(output_recover(p[0], &rec, &err), ABL_OK);
    CU_ASSERT(!rec);
    CU_ASSERT(tu_lexists(p[3]));
    /* a foreign marker: refused with a message, nothing renamed */
    tu_spit(p[6], "rename /etc/passwd\n");
    CU_ASSERT_EQUAL(output_recover(p[0], &rec, &err), ABL_EIO);
    CU_ASSERT(strstr(err.msg, "is not ablasim's") != NULL);
    char *t = tu_slurp(p[0]);
    CU_ASSERT(t && !strcmp(t, "new h5"));
    free(t);
    CU_ASSERT(tu_lexists(p[3]));
}

/* ---- SIGKILL at random moments -------------------------------------------------------------- */

/* run_id of the .h5 (root attribute; "" if unreadable) and whether complete = 1. */
static bool h5_run_id(const char *path, char *id, size_t len)
{
    id[0] = '\0';
    H5E_auto2_t fn;
    void *data;
    H5Eget_auto2(H5E_DEFAULT, &fn, &data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    bool complete = false;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0) {
        long long c = 0;
        hid_t a = H5Aopen(f, "complete", H5P_DEFAULT);
        if (a >= 0 && H5Aread(a, H5T_NATIVE_LLONG, &c) >= 0) complete = c == 1;
        if (a >= 0) H5Aclose(a);
        a = H5Aopen(f, "run_id", H5P_DEFAULT);
        if (a >= 0) {
            hid_t t = H5Tcopy(H5T_C_S1);
            H5Tset_size(t, H5T_VARIABLE);
            H5Tset_cset(t, H5T_CSET_UTF8); /* as written; HDF5 does not convert charsets */
            char *v = NULL;
            if (H5Aread(a, t, &v) >= 0 && v) {
                snprintf(id, len, "%s", v);
                H5free_memory(v);
            }
            H5Tclose(t);
            H5Aclose(a);
        }
        H5Fclose(f);
    }
    H5Eset_auto2(H5E_DEFAULT, fn, data);
    return complete;
}

/* The run_id a sidecar names after `key` (JSON "run_id": "...", XDMF Name="run_id" Value="..."). */
static void sidecar_id(const char *path, const char *key, char *id, size_t len)
{
    id[0] = '\0';
    char *t = tu_slurp(path);
    const char *p = t ? strstr(t, key) : NULL;
    if (p) {
        p += strlen(key);
        size_t n = strcspn(p, "\"");
        snprintf(id, len, "%.*s", (int)n, p);
    }
    free(t);
}

/* The three files form one complete result: complete = 1 and one run_id in all three. */
static bool set_consistent(const char *h5, const char *json, const char *xdmf, char *id_out)
{
    char a[64], b[64], c[64];
    bool complete = h5_run_id(h5, a, sizeof a);
    sidecar_id(json, "\"run_id\": \"", b, sizeof b);
    sidecar_id(xdmf, "Name=\"run_id\" Value=\"", c, sizeof c);
    if (id_out) snprintf(id_out, 64, "%s", a);
    return complete && a[0] && !strcmp(a, b) && !strcmp(a, c);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static pid_t spawn_run(const char *out, const char *errf, const char *extra)
{
    pid_t pid = fork();
    if (pid == 0) {
        char cmd[3000];
        snprintf(cmd, sizeof cmd,
                 "exec '%s' run '%s/configs/liver_demo.yaml' -o '%s' -q --threads 2 "
                 "--set grid.dims=[24,24,24] --set grid.spacing_mm=[2,2,2] "
                 "--set sources.0.shape.radius_mm=2.5 --set output.snapshot_interval_s=20 %s "
                 ">/dev/null 2>'%s'",
                 tu_bin(), tu_root(), out, extra, errf);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void test_kill_random(void)
{
    char dir[600], out[800], json[800], xdmf[800], commit[800], errf[800];
    tu_subdir(dir, sizeof dir, "kill");
    snprintf(out, sizeof out, "%s/r.h5", dir);
    snprintf(json, sizeof json, "%s/r.json", dir);
    snprintf(xdmf, sizeof xdmf, "%s/r.xdmf", dir);
    snprintf(commit, sizeof commit, "%s/r.h5.commit", dir);
    snprintf(errf, sizeof errf, "%s/err.txt", dir);
    const char *dur = "--set time.duration_s=600";
    /* the older result, and how long a whole run takes here */
    int status;
    pid_t pid = spawn_run(out, errf, dur);
    waitpid(pid, &status, 0);
    CU_ASSERT_FATAL(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* a second, warm run gives the time window the kills are spread over */
    double t0 = now_s();
    pid = spawn_run(out, errf, dur);
    waitpid(pid, &status, 0);
    double t_run = now_s() - t0;
    const double t_first = t_run;
    CU_ASSERT_FATAL(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char old_id[64];
    CU_ASSERT_FATAL(set_consistent(out, json, xdmf, old_id));
    unsigned long long old_sum[3] = {tu_file_sum(out), tu_file_sum(json), tu_file_sum(xdmf)};
    srand(20261203); /* fixed seed: the same 20 moments every time */
    int n_old = 0, n_new = 0, n_pending = 0;
    for (int k = 0; k < 20; k++) {
        const double at = t_run * rand() / (double)RAND_MAX;
        pid = spawn_run(out, errf, dur);
        usleep((useconds_t)(at * 1e6));
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        bool old_intact = tu_file_sum(out) == old_sum[0] && tu_file_sum(json) == old_sum[1] &&
                          tu_file_sum(xdmf) == old_sum[2];
        if (tu_lexists(commit)) {
            /* killed inside the commit: the new files are complete under their temporary or
             * final names; the next command completes the renames */
            abl_error err = {0};
            bool rec = false;
            CU_ASSERT_EQUAL(output_recover(out, &rec, &err), ABL_OK);
            n_pending++;
            old_intact = false;
        }
        char id[64];
        bool new_complete = !old_intact && set_consistent(out, json, xdmf, id) &&
                            strcmp(id, old_id) != 0;
        if (!(old_intact || new_complete))
            printf("\n  kill %d at %.3f s: neither the old set nor a complete new one", k, at);
        CU_ASSERT(old_intact || new_complete);
        n_old += old_intact;
        n_new += new_complete;
        /* the next run succeeds (stale lock and temporaries of the killed one in the way);
         * its duration is the window for the next kill (the machine's load varies) */
        t0 = now_s();
        pid = spawn_run(out, errf, dur);
        waitpid(pid, &status, 0);
        t_run = now_s() - t0;
        CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CU_ASSERT(set_consistent(out, json, xdmf, old_id));
        old_sum[0] = tu_file_sum(out);
        old_sum[1] = tu_file_sum(json);
        old_sum[2] = tu_file_sum(xdmf);
    }
    printf("\n  20 SIGKILLs over a %.2f s run: old set intact %d, new set complete %d (of which "
           "completed from the commit marker %d)",
           t_first, n_old, n_new, n_pending);
}

/* ---- property: outputs never hit inputs ----------------------------------------------------- */

static void test_collision_property(void)
{
    char dir[600], cmd[4000], errf[800];
    tu_subdir(dir, sizeof dir, "prop");
    snprintf(errf, sizeof errf, "%s/err.txt", dir);
    /* inputs of the run: scenario, tissues file, mesh (a valid mesh written by the library) */
    const char *inputs[] = {"scenario", "tissues", "mesh"};
    /* output-like names of a run writing O.h5 with checkpoint C.h5 */
    const char *outs[] = {"O.h5", "O.h5.tmp", "O.h5.part", "O.h5.commit", "O.h5.lock", "O.json",
                          "O.xdmf", "O.json.tmp", "O.incomplete.h5", "C.h5", "C.h5.tmp"};
    const int nouts = (int)(sizeof outs / sizeof *outs);
    const char *spell[] = {"plain", "symlink", "hardlink", "dotdot"};
    int cases = 0, refused = 0, intact = 0;
    for (int in = 0; in < 3; in++)
        for (int o = 0; o < nouts; o++)
            for (int sp = 0; sp < 4; sp++) {
                char d[800];
                snprintf(d, sizeof d, "%s/c_%d_%d_%d", dir, in, o, sp);
                snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/sub' && cd '%s' && "
                                          "cp '%s/configs/tissues.yaml' tissues.yaml",
                         d, d, d, tu_root());
                CU_ASSERT_FATAL(tu_sh(cmd) == 0);
                /* the input file carries the output-like name (plain), or the output-like name
                 * is a symlink / hard link to it, or the command spells the name ./sub/../ */
                const char *in_name = inputs[in];
                char in_file[64], o_name[64];
                snprintf(in_file, sizeof in_file, "%s", sp == 0 || sp == 3 ? outs[o] : "input.dat");
                snprintf(o_name, sizeof o_name, "%s", outs[o]);
                char mesh_line[200] = "dims: [10, 8, 6]\n  spacing_mm: [1, 1, 1]\n  background: liver";
                if (in == 2)
                    snprintf(mesh_line, sizeof mesh_line,
                             "mesh: %s\n  labels: {0: liver, 1: tumour}", in_file);
                char yaml[1200];
                snprintf(yaml, sizeof yaml,
                         "name: prop\ntissues_file: %s\ngrid:\n  %s\ntime: {duration_s: 2}\n"
                         "sources:\n  - {type: volumetric, shape: {type: sphere, center_mm: [0, "
                         "0, 0], radius_mm: 2}, power_W: 1}\n",
                         in == 1 ? in_file : "tissues.yaml", mesh_line);
                char scen[64];
                snprintf(scen, sizeof scen, "%s", in == 0 ? in_file : "s.yaml");
                char path[1000];
                snprintf(path, sizeof path, "%s/%s", d, scen);
                if (in == 1) {
                    snprintf(cmd, sizeof cmd, "cd '%s' && mv tissues.yaml '%s'", d, in_file);
                    CU_ASSERT_FATAL(tu_sh(cmd) == 0);
                }
                if (in == 2) {
                    snprintf(cmd, sizeof cmd, "cp '%s/prop_mesh.h5' '%s/%s'", tu_tmpdir(),
                             d, in_file);
                    CU_ASSERT_FATAL(tu_sh(cmd) == 0);
                }
                tu_spit(path, yaml);
                if (sp == 1 || sp == 2) {
                    snprintf(cmd, sizeof cmd, "cd '%s' && ln %s '%s' '%s'", d, sp == 1 ? "-s" : "",
                             in_file, o_name);
                    CU_ASSERT_FATAL(tu_sh(cmd) == 0);
                }
                /* checksums of every input */
                char ip[3][1000];
                snprintf(ip[0], sizeof ip[0], "%s/%s", d, scen);
                snprintf(ip[1], sizeof ip[1], "%s/%s", d, in == 1 ? in_file : "tissues.yaml");
                snprintf(ip[2], sizeof ip[2], "%s/%s", d, in == 2 ? in_file : scen);
                unsigned long long before[3] = {tu_file_sum(ip[0]), tu_file_sum(ip[1]),
                                                tu_file_sum(ip[2])};
                /* -o and --checkpoint from the output-like name's family */
                const bool is_ck = o >= 9;
                char oarg[200], carg[200];
                const char *pre = sp == 3 ? "./sub/../" : "";
                if (is_ck) {
                    snprintf(oarg, sizeof oarg, "O.h5");
                    snprintf(carg, sizeof carg, "%sC.h5", pre);
                } else {
                    snprintf(oarg, sizeof oarg, "%sO.h5", pre);
                    snprintf(carg, sizeof carg, "C.h5");
                }
                snprintf(cmd, sizeof cmd,
                         "cd '%s' && timeout 60 '%s' run '%s' -o '%s' --checkpoint '%s' -q "
                         ">/dev/null 2>'%s'",
                         d, tu_bin(), scen, oarg, carg, errf);
                int rc = tu_sh(cmd);
                char *e = tu_slurp(errf);
                bool ok_refuse = rc == 2 && e && strstr(e, "(same file)") && strstr(e, in_name);
                bool ok_intact = tu_file_sum(ip[0]) == before[0] &&
                                 tu_file_sum(ip[1]) == before[1] &&
                                 tu_file_sum(ip[2]) == before[2] && before[0] && before[1] &&
                                 before[2];
                if (!ok_refuse || !ok_intact)
                    printf("\n  input %s as %s (%s): exit %d, %s", in_name, o_name, spell[sp], rc,
                           e ? e : "");
                cases++;
                refused += ok_refuse;
                intact += ok_intact;
                free(e);
            }
    printf("\n  %d (input, output-like name, spelling) cases: %d refused naming the input, "
           "%d with every input unchanged",
           cases, refused, intact);
    CU_ASSERT_EQUAL(refused, cases);
    CU_ASSERT_EQUAL(intact, cases);
}

/* ---- two writers ------------------------------------------------------------------------------ */

static void test_two_writers(void)
{
    char dir[600], out[800], json[800], xdmf[800], lock[800], errf[800], errf2[800];
    tu_subdir(dir, sizeof dir, "two");
    snprintf(out, sizeof out, "%s/r.h5", dir);
    snprintf(json, sizeof json, "%s/r.json", dir);
    snprintf(xdmf, sizeof xdmf, "%s/r.xdmf", dir);
    snprintf(lock, sizeof lock, "%s/r.h5.lock", dir);
    snprintf(errf, sizeof errf, "%s/err1.txt", dir);
    snprintf(errf2, sizeof errf2, "%s/err2.txt", dir);
    pid_t first = spawn_run(out, errf, "--set time.duration_s=900");
    /* wait until it holds the lock and has written its pid into it, then stop it there (SIGSTOP
     * keeps the lock held), so the race does not depend on how fast this machine is */
    struct stat sb;
    for (int i = 0; i < 1000 && !(stat(lock, &sb) == 0 && sb.st_size > 0); i++) usleep(5000);
    kill(first, SIGSTOP);
    CU_ASSERT_FATAL(stat(lock, &sb) == 0 && sb.st_size > 0);
    int status;
    pid_t second = spawn_run(out, errf2, "--set time.duration_s=60");
    pid_t w = waitpid(second, &status, 0);
    const int rc2 = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    CU_ASSERT_EQUAL(w, second);
    char *e = tu_slurp(errf2), want[1200];
    /* spawn_run execs the binary from sh: the writer's pid is the child's pid */
    snprintf(want, sizeof want, "another ablasim process is writing %s (pid %d)", out, (int)first);
    CU_ASSERT_EQUAL(rc2, 3);
    CU_ASSERT(e && strstr(e, want));
    if (!(e && strstr(e, want))) printf("\n  second writer said: %s", e ? e : "(nothing)");
    free(e);
    kill(first, SIGCONT);
    waitpid(first, &status, 0);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT(set_consistent(out, json, xdmf, NULL));
    CU_ASSERT(!tu_lexists(lock)); /* released and removed by its holder */
}

static int init_suite(void)
{
    /* the mesh the property test uses as an input */
    abl_mesh m = {.dims = {10, 8, 6}, .spacing_mm = {1, 1, 1}, .origin_mm = {-4.5, -3.5, -2.5}};
    m.labels = calloc(480, 1);
    if (!m.labels) return 1;
    for (int c = 0; c < 480; c++) m.labels[c] = (uint8_t)(c % 3 == 0);
    abl_error err = {0};
    char path[800];
    snprintf(path, sizeof path, "%s/prop_mesh.h5", tu_tmpdir());
    abl_status st = mesh_write(path, &m, &err);
    free(m.labels);
    return st != ABL_OK;
}

void register_safety_tests(void)
{
    CU_pSuite s = CU_add_suite("safety", init_suite, NULL);
    CU_add_test(s, "interrupted commit is completed at every rename", test_commit_recovery);
    CU_add_test(s, "outputs never hit inputs (property)", test_collision_property);
    CU_add_test(s, "two writers: the second fails with the first's pid", test_two_writers);
    CU_add_test(s, "SIGKILL at 20 random moments", test_kill_random);
}
