/* signals.c - SIGINT/SIGTERM/SIGHUP for every command that writes files: the handler only sets
 * a flag (async-signal-safe); the commands look at it at their safe points, where none of their
 * files is half-written, and stop there with exit 75 (ABL_ESTOPPED). A batch system's time limit
 * (SLURM sends SIGTERM, then SIGKILL after KillWait) thus ends a sweep or a plan between two
 * of its points, with its journal whole and its lock released, instead of killing it. SIGHUP is
 * what a closed terminal or SSH session sends: its default action killed a run with no
 * checkpoint and left its .tmp and lock files (adversarial test, session 28); it now stops like
 * SIGTERM, unless the command was started with SIGHUP ignored (nohup). */
#include <signal.h>
#include <string.h>

#include "commands.h"

volatile sig_atomic_t cli_stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    cli_stop_requested = 1;
}

void cli_install_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* `nohup ablasim run ... &` asks for the run to outlive its terminal: an inherited SIG_IGN
     * for SIGHUP is kept (review, session 28) */
    struct sigaction old;
    if (sigaction(SIGHUP, NULL, &old) != 0 || old.sa_handler != SIG_IGN)
        sigaction(SIGHUP, &sa, NULL);
}
