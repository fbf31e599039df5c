/* config.h - YAML documents as a small tree that remembers where every value came from.
 *
 * libyaml parses the file; this module keeps each node's file and line so that every error can
 * say "scenario.yaml:12: key 'grid.spacing_mm[1]' = 0: allowed (0, 100] mm". Command-line
 * overrides (--set a.b.c=value) are grafted onto the same tree before the schema reads it, so a
 * value from --set is validated exactly like one from the file. Each map's keys are declared once
 * (cfg_keydecl, with their documentation); cfg_check_decl() turns every key not declared there
 * into an error, so a typo is never silently ignored.
 */
#ifndef ABLASIM_CONFIG_H
#define ABLASIM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "ablasim/status.h"

typedef enum { CFG_SCALAR, CFG_MAP, CFG_SEQ } cfg_kind;

typedef struct cfg_node {
    cfg_kind kind;
    char *key;    /* key in the parent map, NULL for sequence items and the root */
    char *value;  /* scalar text (CFG_SCALAR only) */
    bool quoted;  /* scalar was quoted: never a number */
    int line;     /* 1-based line in origin; 0 for --set values */
    char *origin; /* file path, or "--set a.b.c" */
    struct cfg_node *parent;
    struct cfg_node **items; /* children: map entries (with key) or sequence elements */
    size_t n, cap;
    bool used; /* read by the schema */
} cfg_node;

typedef struct {
    double lo, hi;
    bool lo_open, hi_open; /* exclusive bounds */
    const char *unit;      /* printed in messages, may be NULL */
} cfg_range;

/* Parse a YAML file into a tree. The root must be a mapping. */
abl_status cfg_load_file(const char *path, cfg_node **root, abl_error *err);
/* Parse YAML text; origin names it in messages. Any node kind may be the root. */
abl_status cfg_parse_string(const char *text, const char *origin, cfg_node **out, abl_error *err);
void cfg_free(cfg_node *node);

/* Apply "a.b.c=value" (value is YAML: 3, 0.5, [1,2,3], {type: sphere}); path segments that are
 * integers index sequences. Missing maps along the path are created; the schema judges the result. */
abl_status cfg_set(cfg_node *root, const char *assignment, abl_error *err);

/* Child of a map by key (NULL if absent, or if map is NULL). Marks it used. */
cfg_node *cfg_get(cfg_node *map, const char *key);
/* "file:line" or "--set a.b.c" */
const char *cfg_where(const cfg_node *node, char *buf, size_t len);
/* Dotted path of a node, "grid.shapes[2].radius_mm". */
const char *cfg_path(const cfg_node *node, char *buf, size_t len);

/* Typed readers. Absent key: *out = def unless required (then an error). A present key must parse
 * and lie in the range. map may be NULL (treated as empty). */
abl_status cfg_get_double(cfg_node *map, const char *key, bool required, double def,
                          const cfg_range *range, double *out, abl_error *err);
abl_status cfg_get_long(cfg_node *map, const char *key, bool required, long def, long lo, long hi,
                        long *out, abl_error *err);
abl_status cfg_get_bool(cfg_node *map, const char *key, bool def, bool *out, abl_error *err);
abl_status cfg_get_string(cfg_node *map, const char *key, bool required, const char *def,
                          const char **out, abl_error *err);
/* One of names[0..count-1]; *out is the index. */
abl_status cfg_get_enum(cfg_node *map, const char *key, bool required, int def,
                        const char *const *names, int count, int *out, abl_error *err);
/* A sequence of exactly n numbers. */
abl_status cfg_get_vec(cfg_node *map, const char *key, bool required, const double *def, int n,
                       const cfg_range *range, double *out, abl_error *err);
/* Scalar node as a number with a range; used for sequence items. */
abl_status cfg_node_double(cfg_node *node, const cfg_range *range, double *out, abl_error *err);
/* Node must be of this kind (map/seq); NULL node is allowed when !required. */
abl_status cfg_expect(cfg_node *node, cfg_kind kind, bool required, const char *what,
                      abl_error *err);
/* Error for the first key of map that is not in allowed[] (NULL-terminated). */
abl_status cfg_check_keys(const cfg_node *map, const char *const *allowed, abl_error *err);

/* Key declarations: each map of a scenario lists its keys once, in a table of cfg_keydecl, with
 * the texts of the README's "Scenario reference" (unit, default, allowed values, meaning). The
 * unknown-key check reads its allowed keys from the table, and `ablasim keys --markdown` prints
 * the reference from the same tables, so the documentation cannot drift from the parser.
 * The table's order is the order of the keys in "allowed here: ..." messages.
 *
 * Some maps accept different keys by a variant (shape type, generator mode, electrode type):
 * variants == 0 means the key is allowed in every variant, else bit v set means allowed in
 * variant v. A row with key NULL is documentation only (a variant's summary, or an included
 * table through sub); the check skips it. */
typedef struct cfg_keydecl {
    const char *key;     /* as written in the map; NULL: a reference row only */
    const char *unit;    /* reference columns; NULL prints an empty cell */
    const char *deflt;
    const char *allowed;
    const char *meaning;
    unsigned variants;   /* 0: every variant; else bit v: variant v only */
    const char *label;   /* key column; NULL: `<prefix><key>`; "": no row (a neighbour covers it) */
    const struct cfg_keytable *sub; /* map or list items under this key, listed after its row */
    const char *sub_prefix;         /* key prefix of the rows of sub, e.g. "grid.shapes[i]." */
} cfg_keydecl;

typedef struct cfg_keytable {
    const cfg_keydecl *decl;
    size_t n;
} cfg_keytable;

/* A plain key (every variant, its own row): CFG_KEY(key, unit, default, allowed, meaning). */
#define CFG_KEY(k, u, d, a, m)                                                                     \
    {.key = (k), .unit = (u), .deflt = (d), .allowed = (a), .meaning = (m)}
#define CFG_KEYTABLE(decl) {(decl), sizeof(decl) / sizeof((decl)[0])}
#define CFG_ALL_VARIANTS (-1)

/* Append the keys of t allowed in variant (CFG_ALL_VARIANTS: all) to names[*n..cap-1], for maps
 * whose keys come from several tables (cfg_check_keys then checks the NULL-terminated list). */
void cfg_decl_names(const cfg_keytable *t, int variant, const char **names, size_t *n, size_t cap);
/* cfg_check_keys with the keys of t allowed in variant (CFG_ALL_VARIANTS: all). */
abl_status cfg_check_decl(const cfg_node *map, const cfg_keytable *t, int variant, abl_error *err);
/* The reference rows of t and, depth first, of every sub table, as Markdown table rows
 * ("| key | unit | default | allowed | meaning |"); prefix goes before each key. 0 or -1. */
int cfg_decl_markdown(FILE *f, const cfg_keytable *t, const char *prefix);

/* Trees as values (the planner edits a scenario as a tree and writes it back).
 * cfg_clone: deep copy (used flags cleared), NULL when out of memory.
 * cfg_append: add child at the end of a map (child->key set) or sequence; 0 or -1.
 * cfg_detach: remove and return item i of parent (the caller owns it).
 * cfg_emit: write the tree as block YAML that cfg_load_file reads back to the same tree
 *           (keys, values, quoting; comments and file:line origins are not kept); 0 or -1. */
cfg_node *cfg_clone(const cfg_node *src);
int cfg_append(cfg_node *parent, cfg_node *child);
cfg_node *cfg_detach(cfg_node *parent, size_t i);
int cfg_emit(FILE *f, const cfg_node *root);

#endif
