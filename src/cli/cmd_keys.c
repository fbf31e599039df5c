/* cmd_keys.c - 'ablasim keys': key references printed from the key declarations the parsers
 * check against: the scenario keys (README "Scenario reference"), a source type's own keys
 * (docs/RFA.md, docs/MWA.md, docs/CRYO.md), the plan file keys (docs/PLANNING.md) and the sweep
 * file keys (docs/SWEEPS.md). Not in the command list: it exists so that `make readme-keys` can
 * write those sections and make check can tell when a document and the code differ. */
#include <stdio.h>
#include <string.h>

#include "ablasim/plan.h"
#include "ablasim/scenario.h"
#include "ablasim/sweep.h"
#include "commands.h"

static const char *usage_keys = "usage: ablasim keys --markdown | --source TYPE | --plan | --sweep\n"
                                "\n"
                                "  --markdown      print README \"Scenario reference\" (the table of "
                                "every scenario key)\n"
                                "  --source TYPE   print the keys of source type TYPE (rfa, mwa, "
                                "cryo: docs/RFA.md, docs/MWA.md, docs/CRYO.md)\n"
                                "  --plan          print docs/PLANNING.md \"Plan file keys\"\n"
                                "  --sweep         print docs/SWEEPS.md \"SWEEP.yaml reference\"\n";

int cmd_keys(int argc, char **argv)
{
    if (argc == 1 && (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"))) {
        fputs(usage_keys, stdout);
        return 0;
    }
    const char *opt = argc ? argv[0] : "";
    const bool source = !strcmp(opt, "--source");
    if (source ? argc != 2
               : argc != 1 || (strcmp(opt, "--markdown") && strcmp(opt, "--plan") &&
                               strcmp(opt, "--sweep"))) {
        fprintf(stderr, "ablasim keys: %s%s\n\n%s",
                !argc ? "missing --markdown"
                : source ? "--source needs one source type"
                         : "unknown option: ",
                argc && !source ? opt : "", usage_keys);
        return 1;
    }
    int r;
    if (source) {
        r = scenario_source_reference_markdown(stdout, argv[1]);
        if (r == 1) {
            fprintf(stderr, "ablasim keys: --source %s: not a source type with its own keys\n",
                    argv[1]);
            return 1;
        }
    } else if (!strcmp(opt, "--plan"))
        r = plan_reference_markdown(stdout);
    else if (!strcmp(opt, "--sweep"))
        r = sweep_reference_markdown(stdout);
    else
        r = scenario_reference_markdown(stdout);
    if (r || fflush(stdout) == EOF) {
        fprintf(stderr, "ablasim keys: cannot write the reference to standard output\n");
        return 3;
    }
    return 0;
}
