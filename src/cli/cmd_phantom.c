/* cmd_phantom.c - 'ablasim phantom' (work in progress: see the issue tracker). */
#include <stdio.h>

#include "commands.h"

int cmd_phantom(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "ablasim phantom: not available in this build yet\n");
    return 1;
}
