/* cmd_margin.c - 'ablasim margin' (work in progress: see the issue tracker). */
#include <stdio.h>

#include "commands.h"

int cmd_margin(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ablasim margin: not available in this build yet\n");
    return 1;
}
