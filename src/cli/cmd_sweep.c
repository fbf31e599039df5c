/* cmd_sweep.c - 'ablasim sweep' (work in progress: see the issue tracker). */
#include <stdio.h>

#include "commands.h"

int cmd_sweep(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ablasim sweep: not available in this build yet\n");
    return 1;
}
