/* commands.h - the subcommands of the ablasim program, one file each in src/cli/.
 * Each parses its own arguments, calls the library and returns the process exit code
 * (abl_status_exit_code for library errors, 1 for usage errors). Private to the CLI. */
#ifndef ABLASIM_COMMANDS_H
#define ABLASIM_COMMANDS_H

#include <signal.h>

int cmd_run(int argc, char **argv);     /* main.c */
int cmd_margin(int argc, char **argv);  /* cmd_margin.c */
int cmd_phantom(int argc, char **argv); /* cmd_phantom.c */
int cmd_sweep(int argc, char **argv);   /* cmd_sweep.c */
int cmd_plan(int argc, char **argv);    /* cmd_plan.c */
int cmd_keys(int argc, char **argv);    /* cmd_keys.c (not listed in the usage) */

/* signals.c: SIGINT and SIGTERM set cli_stop_requested (nothing else); a command installs the
 * handler first thing, before it reads, locks or writes anything, and stops at its next safe
 * point with exit 75. */
extern volatile sig_atomic_t cli_stop_requested;
void cli_install_stop_signals(void);

#endif
