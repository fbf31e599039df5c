/* cmd_keys.c - 'ablasim keys --markdown': the scenario key reference, printed from the key
 * declarations the schema checks against (scenario_reference_markdown). Not in the command
 * list: it exists so that `make readme-keys` can write README "Scenario reference" and
 * make check can tell when the README and the code differ. */
#include <stdio.h>
#include <string.h>

#include "ablasim/plan.h"
#include "ablasim/scenario.h"
#include "commands.h"

static const char *usage_keys = "usage: ablasim keys --markdown | --plan\n"
                                "\n"
                                "  --markdown   print README \"Scenario reference\" (the table of "
                                "every scenario key)\n"
                                "  --plan       print docs/PLANNING.md \"Plan file keys\"\n";

int cmd_keys(int argc, char **argv)
{
    if (argc == 1 && (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"))) {
        fputs(usage_keys, stdout);
        return 0;
    }
    if (argc != 1 || (strcmp(argv[0], "--markdown") && strcmp(argv[0], "--plan"))) {
        fprintf(stderr, "ablasim keys: %s%s\n\n%s",
                argc ? "unknown option: " : "missing --markdown", argc ? argv[0] : "", usage_keys);
        return 1;
    }
    const int r = strcmp(argv[0], "--plan") ? scenario_reference_markdown(stdout)
                                            : plan_reference_markdown(stdout);
    if (r || fflush(stdout) == EOF) {
        fprintf(stderr, "ablasim keys: cannot write the reference to standard output\n");
        return 3;
    }
    return 0;
}
