/* config.c - libyaml event stream -> cfg_node tree with file:line, plus schema readers. */
#include "ablasim/config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

static char *xstrdup(const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static cfg_node *node_new(cfg_kind kind, int line, const char *origin)
{
    cfg_node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->line = line;
    n->origin = xstrdup(origin);
    if (!n->origin) {
        free(n);
        return NULL;
    }
    return n;
}

void cfg_free(cfg_node *node)
{
    if (!node) return;
    for (size_t i = 0; i < node->n; i++) cfg_free(node->items[i]);
    free(node->items);
    free(node->key);
    free(node->value);
    free(node->origin);
    free(node);
}

static int node_append(cfg_node *parent, cfg_node *child)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? 2 * parent->cap : 8;
        cfg_node **it = realloc(parent->items, cap * sizeof *it);
        if (!it) return -1;
        parent->items = it;
        parent->cap = cap;
    }
    parent->items[parent->n++] = child;
    child->parent = parent;
    return 0;
}

const char *cfg_where(const cfg_node *node, char *buf, size_t len)
{
    if (!node) snprintf(buf, len, "(absent)");
    else if (node->line > 0) snprintf(buf, len, "%s:%d", node->origin, node->line);
    else snprintf(buf, len, "%s", node->origin);
    return buf;
}

const char *cfg_path(const cfg_node *node, char *buf, size_t len)
{
    /* Build from the leaf up into a small stack of segments. */
    const cfg_node *chain[64];
    int depth = 0;
    for (const cfg_node *n = node; n && n->parent && depth < 64; n = n->parent) chain[depth++] = n;
    size_t pos = 0;
    buf[0] = '\0';
    for (int d = depth - 1; d >= 0; d--) {
        const cfg_node *n = chain[d];
        int w;
        if (n->key) w = snprintf(buf + pos, len - pos, "%s%s", pos ? "." : "", n->key);
        else {
            size_t idx = 0;
            for (size_t i = 0; i < n->parent->n; i++)
                if (n->parent->items[i] == n) idx = i;
            w = snprintf(buf + pos, len - pos, "[%zu]", idx);
        }
        if (w < 0 || (size_t)w >= len - pos) break;
        pos += (size_t)w;
    }
    if (depth == 0) snprintf(buf, len, "(top level)");
    return buf;
}

/* ---- parsing ---------------------------------------------------------------------------- */

/* Deeper nesting than this is no scenario; the limit keeps hostile input from exhausting the
 * stack of the recursive tree builder. */
#define CFG_MAX_DEPTH 64
/* Items in one list and entries in one mapping. A list may be a sweep axis's values, up to
 * the sweep's own 10^6 points (SWEEP_MAX_POINTS; a schedule of a generator log at 1 Hz for a
 * day has 86 400 points); a mapping is a tissue table or a label map, a few hundred entries.
 * They bound what a file can cost: a 16 MB list of 8.3 million numbers took 1.4 GB of parse
 * nodes (about 170 B each: 10^6 items cost about 170 MB), and the duplicate-key check of a
 * mapping is quadratic (adversarial test, session 28). */
#define CFG_MAX_SEQ_ITEMS 1000000
#define CFG_MAX_MAP_ENTRIES 10000

typedef struct {
    yaml_parser_t parser;
    const char *origin;
    abl_error *err;
    int depth;
} parse_ctx;

static abl_status parse_node(parse_ctx *c, yaml_event_t *ev, cfg_node **out);

static abl_status next_event(parse_ctx *c, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&c->parser, ev)) {
        return abl_fail(c->err, ABL_EINVAL, "%s:%zu: YAML syntax error: %s%s%s", c->origin,
                        c->parser.problem_mark.line + 1,
                        c->parser.problem ? c->parser.problem : "unknown",
                        c->parser.context ? " " : "", c->parser.context ? c->parser.context : "");
    }
    return ABL_OK;
}

/* A YAML scalar may carry a NUL ("\0" in a double-quoted string): ablasim's values are C
 * strings, so it would silently cut the key or value there (a sweep axis "a\0b" became "a").
 * Refused instead; the length libyaml reports is the scalar's true length. */
static int scalar_has_nul(const yaml_event_t *ev)
{
    return memchr(ev->data.scalar.value, '\0', ev->data.scalar.length) != NULL;
}

/* An explicit YAML tag (`!!str 5`, `!custom 5`) was dropped without a word: `!!str 5` ran as
 * the number 5 where the quoted "5" is refused as a quoted number (adversarial test, session
 * 28). ablasim files have no use for tags; the event is consumed. */
static abl_status refuse_tag(parse_ctx *c, yaml_event_t *ev, int line)
{
    const yaml_char_t *tag = ev->type == YAML_SCALAR_EVENT           ? ev->data.scalar.tag
                             : ev->type == YAML_MAPPING_START_EVENT ? ev->data.mapping_start.tag
                                                                    : ev->data.sequence_start.tag;
    abl_status st = abl_fail(c->err, ABL_EINVAL,
                             "%s:%d: YAML tags (here '%.60s') are not supported in ablasim "
                             "files; write the value without it",
                             c->origin, line, tag ? (const char *)tag : "?");
    yaml_event_delete(ev);
    return st;
}

static abl_status parse_children(parse_ctx *c, cfg_node *parent, yaml_event_type_t end_type)
{
    for (;;) {
        yaml_event_t ev;
        abl_status st = next_event(c, &ev);
        if (st) return st;
        if (ev.type == end_type) {
            yaml_event_delete(&ev);
            return ABL_OK;
        }
        if (parent->n >= (parent->kind == CFG_MAP ? CFG_MAX_MAP_ENTRIES : CFG_MAX_SEQ_ITEMS)) {
            int line = (int)ev.start_mark.line + 1;
            yaml_event_delete(&ev);
            return parent->kind == CFG_MAP
                       ? abl_fail(c->err, ABL_EINVAL,
                                  "%s:%d: a mapping (begun at line %d) has more than %d entries",
                                  c->origin, line, parent->line, CFG_MAX_MAP_ENTRIES)
                       : abl_fail(c->err, ABL_EINVAL,
                                  "%s:%d: a list (begun at line %d) has more than %d items",
                                  c->origin, line, parent->line, CFG_MAX_SEQ_ITEMS);
        }
        if (parent->kind == CFG_MAP) {
            /* key must be a scalar */
            if (ev.type != YAML_SCALAR_EVENT) {
                int line = (int)ev.start_mark.line + 1;
                yaml_event_delete(&ev);
                return abl_fail(c->err, ABL_EINVAL, "%s:%d: a mapping key must be a plain name",
                                c->origin, line);
            }
            int key_line = (int)ev.start_mark.line + 1;
            if (scalar_has_nul(&ev)) {
                yaml_event_delete(&ev);
                return abl_fail(c->err, ABL_EINVAL,
                                "%s:%d: a key contains a NUL character (\\0); keys are plain "
                                "names",
                                c->origin, key_line);
            }
            char *key = xstrdup((const char *)ev.data.scalar.value);
            yaml_event_delete(&ev);
            if (!key) return abl_fail(c->err, ABL_ENOMEM, "out of memory parsing %s", c->origin);
            for (size_t i = 0; i < parent->n; i++) {
                if (strcmp(parent->items[i]->key, key) == 0) {
                    abl_status s = abl_fail(c->err, ABL_EINVAL,
                                            "%s:%d: key '%s' appears twice in the same mapping "
                                            "(first at line %d)",
                                            c->origin, key_line, key, parent->items[i]->line);
                    free(key);
                    return s;
                }
            }
            st = next_event(c, &ev);
            if (st) {
                free(key);
                return st;
            }
            cfg_node *child = NULL;
            st = parse_node(c, &ev, &child);
            if (st) {
                free(key);
                return st;
            }
            child->key = key;
            child->line = key_line;
            if (node_append(parent, child)) {
                cfg_free(child);
                return abl_fail(c->err, ABL_ENOMEM, "out of memory parsing %s", c->origin);
            }
        } else {
            cfg_node *child = NULL;
            st = parse_node(c, &ev, &child);
            if (st) return st;
            if (node_append(parent, child)) {
                cfg_free(child);
                return abl_fail(c->err, ABL_ENOMEM, "out of memory parsing %s", c->origin);
            }
        }
    }
}

/* ev is consumed. */
static abl_status parse_node(parse_ctx *c, yaml_event_t *ev, cfg_node **out)
{
    int line = (int)ev->start_mark.line + 1;
    cfg_node *n = NULL;
    abl_status st = ABL_OK;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        if (ev->data.scalar.tag) return refuse_tag(c, ev, line);
        if (scalar_has_nul(ev)) {
            yaml_event_delete(ev);
            return abl_fail(c->err, ABL_EINVAL,
                            "%s:%d: a value contains a NUL character (\\0), which no ablasim "
                            "value (number, name, path) can hold",
                            c->origin, line);
        }
        n = node_new(CFG_SCALAR, line, c->origin);
        if (n) {
            n->value = xstrdup((const char *)ev->data.scalar.value);
            n->quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                        ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        }
        yaml_event_delete(ev);
        if (!n || !n->value) {
            cfg_free(n);
            return abl_fail(c->err, ABL_ENOMEM, "out of memory parsing %s", c->origin);
        }
        break;
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        if (is_map ? ev->data.mapping_start.tag != NULL : ev->data.sequence_start.tag != NULL)
            return refuse_tag(c, ev, line);
        yaml_event_delete(ev);
        if (c->depth >= CFG_MAX_DEPTH)
            return abl_fail(c->err, ABL_EINVAL,
                            "%s:%d: lists and mappings nested too deeply (more than %d levels)",
                            c->origin, line, CFG_MAX_DEPTH);
        c->depth++;
        n = node_new(is_map ? CFG_MAP : CFG_SEQ, line, c->origin);
        if (!n) return abl_fail(c->err, ABL_ENOMEM, "out of memory parsing %s", c->origin);
        st = parse_children(c, n, is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT);
        c->depth--;
        if (st) {
            cfg_free(n);
            return st;
        }
        break;
    }
    case YAML_ALIAS_EVENT:
        yaml_event_delete(ev);
        return abl_fail(c->err, ABL_EINVAL,
                        "%s:%d: YAML aliases (*name) are not supported in ablasim files; write "
                        "the value out",
                        c->origin, line);
    default:
        yaml_event_delete(ev);
        return abl_fail(c->err, ABL_EINVAL, "%s:%d: unexpected YAML structure", c->origin, line);
    }
    *out = n;
    return ABL_OK;
}

static abl_status parse_input(parse_ctx *c, cfg_node **out)
{
    yaml_event_t ev;
    abl_status st;
    cfg_node *root = NULL;
    *out = NULL;
    /* stream start, document start (or stream end for an empty document) */
    if ((st = next_event(c, &ev))) return st;
    yaml_event_delete(&ev);
    if ((st = next_event(c, &ev))) return st;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return abl_fail(c->err, ABL_EINVAL, "%s: the file is empty", c->origin);
    }
    yaml_event_delete(&ev);
    if ((st = next_event(c, &ev))) return st;
    if ((st = parse_node(c, &ev, &root))) return st;
    if ((st = next_event(c, &ev))) {
        cfg_free(root);
        return st;
    }
    yaml_event_delete(&ev); /* document end */
    if ((st = next_event(c, &ev))) {
        cfg_free(root);
        return st;
    }
    int extra = ev.type != YAML_STREAM_END_EVENT;
    int line = (int)ev.start_mark.line + 1;
    yaml_event_delete(&ev);
    if (extra) {
        cfg_free(root);
        return abl_fail(c->err, ABL_EINVAL,
                        "%s:%d: more than one YAML document ('---'); put one scenario per file",
                        c->origin, line);
    }
    *out = root;
    return ABL_OK;
}

abl_status cfg_parse_string(const char *text, const char *origin, cfg_node **out, abl_error *err)
{
    parse_ctx c = {.origin = origin, .err = err};
    if (!yaml_parser_initialize(&c.parser))
        return abl_fail(err, ABL_ENOMEM, "cannot initialise the YAML parser");
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)text, strlen(text));
    abl_status st = parse_input(&c, out);
    yaml_parser_delete(&c.parser);
    return st;
}

abl_status cfg_load_file(const char *path, cfg_node **root, abl_error *err)
{
    *root = NULL;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return abl_fail(err, ABL_EIO, "%s: is a directory, not a YAML file", path);
    /* stat never blocks; fopen on a FIFO with no writer would wait forever */
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return abl_fail(err, ABL_EINVAL,
                        "%s: is %s, not a regular file; only regular files are read", path,
                        S_ISFIFO(sb.st_mode)   ? "a FIFO (named pipe)"
                        : S_ISCHR(sb.st_mode)  ? "a character device"
                        : S_ISSOCK(sb.st_mode) ? "a socket"
                                               : "a special file");
    FILE *f = fopen(path, "rb");
    if (!f) return abl_fail(err, ABL_EIO, "%s: cannot open: %s", path, strerror(errno));
    parse_ctx c = {.origin = path, .err = err};
    if (!yaml_parser_initialize(&c.parser)) {
        fclose(f);
        return abl_fail(err, ABL_ENOMEM, "cannot initialise the YAML parser");
    }
    yaml_parser_set_input_file(&c.parser, f);
    abl_status st = parse_input(&c, root);
    yaml_parser_delete(&c.parser);
    fclose(f);
    if (st) return st;
    if ((*root)->kind != CFG_MAP) {
        int line = (*root)->line;
        cfg_free(*root);
        *root = NULL;
        return abl_fail(err, ABL_EINVAL, "%s:%d: the file must be a YAML mapping of keys to values",
                        path, line);
    }
    return ABL_OK;
}

/* ---- --set overrides ---------------------------------------------------------------------- */

static int is_index(const char *s, size_t len, size_t *idx)
{
    if (len == 0 || len > 9) return 0;
    size_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (size_t)(s[i] - '0');
    }
    *idx = v;
    return 1;
}

static void set_origin_recursive(cfg_node *n, const char *origin)
{
    free(n->origin);
    n->origin = xstrdup(origin);
    n->line = 0;
    for (size_t i = 0; i < n->n; i++) set_origin_recursive(n->items[i], origin);
}

abl_status cfg_set(cfg_node *root, const char *assignment, abl_error *err)
{
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return abl_fail(err, ABL_EINVAL,
                        "--set '%s': expected KEY=VALUE with a dotted key, e.g. "
                        "--set time.duration_s=600",
                        assignment);
    size_t klen = (size_t)(eq - assignment);
    char origin[512];
    snprintf(origin, sizeof origin, "--set %.*s", (int)(klen > 400 ? 400 : klen), assignment);
    const char *value = eq + 1;
    /* blanks, or a YAML comment (a value starting with '#'), are no value either: they were
     * reported as "the file is empty" (an adversarial test, session 30) */
    const char *v1 = value + strspn(value, " \t");
    if (!*v1 || *v1 == '#')
        return abl_fail(err, ABL_EINVAL, "%s: empty value%s (write --set KEY=VALUE)", origin,
                        *v1 == '#' ? " ('#' starts a YAML comment; quote it to mean text)"
                        : "");
    /* checkpoints record the overrides one a line: a line break would come back on resume as
     * two overrides, or none that parses (found by an adversarial review, session 23) */
    if (strpbrk(assignment, "\n\r"))
        return abl_fail(err, ABL_EINVAL,
                        "%s: an override with a line break is refused (checkpoints record one "
                        "override a line); write it on one line, e.g. --set "
                        "output.hot_thresholds_C=[50,55]",
                        origin);

    cfg_node *val = NULL;
    abl_status st = cfg_parse_string(value, origin, &val, err);
    if (st) return st;
    set_origin_recursive(val, origin);

    cfg_node *cur = root;
    const char *seg = assignment;
    for (;;) {
        const char *dot = memchr(seg, '.', (size_t)(eq - seg));
        size_t len = dot ? (size_t)(dot - seg) : (size_t)(eq - seg);
        if (len == 0) {
            cfg_free(val);
            return abl_fail(err, ABL_EINVAL, "%s: empty path segment in the key", origin);
        }
        int last = dot == NULL;
        cfg_node *child = NULL;
        size_t idx;
        if (cur->kind == CFG_SEQ) {
            if (!is_index(seg, len, &idx) || idx >= cur->n) {
                cfg_free(val);
                return abl_fail(err, ABL_EINVAL,
                                "%s: '%.*s' must index the list (0..%zu)", origin, (int)len, seg,
                                cur->n ? cur->n - 1 : 0);
            }
            child = cur->items[idx];
            if (last) {
                val->parent = cur;
                cur->items[idx] = val;
                cfg_free(child);
                return ABL_OK;
            }
        } else if (cur->kind == CFG_MAP) {
            for (size_t i = 0; i < cur->n; i++)
                if (strlen(cur->items[i]->key) == len && !strncmp(cur->items[i]->key, seg, len))
                    child = cur->items[i];
            if (last) {
                val->key = malloc(len + 1);
                if (!val->key) {
                    cfg_free(val);
                    return abl_fail(err, ABL_ENOMEM, "out of memory");
                }
                memcpy(val->key, seg, len);
                val->key[len] = '\0';
                if (child) {
                    for (size_t i = 0; i < cur->n; i++)
                        if (cur->items[i] == child) cur->items[i] = val;
                    val->parent = cur;
                    cfg_free(child);
                } else if (node_append(cur, val)) {
                    cfg_free(val);
                    return abl_fail(err, ABL_ENOMEM, "out of memory");
                }
                return ABL_OK;
            }
            if (!child) {
                child = node_new(CFG_MAP, 0, origin);
                if (!child || !(child->key = malloc(len + 1)) || node_append(cur, child)) {
                    cfg_free(child);
                    cfg_free(val);
                    return abl_fail(err, ABL_ENOMEM, "out of memory");
                }
                memcpy(child->key, seg, len);
                child->key[len] = '\0';
            }
        } else {
            char where[600];
            cfg_where(cur, where, sizeof where);
            cfg_free(val);
            return abl_fail(err, ABL_EINVAL, "%s: '%.*s' is inside a plain value (set at %s)",
                            origin, (int)len, seg, where);
        }
        cur = child;
        seg = dot + 1;
    }
}

/* ---- schema readers ----------------------------------------------------------------------- */

cfg_node *cfg_get(cfg_node *map, const char *key)
{
    if (!map || map->kind != CFG_MAP) return NULL;
    for (size_t i = 0; i < map->n; i++) {
        if (strcmp(map->items[i]->key, key) == 0) {
            map->items[i]->used = true;
            return map->items[i];
        }
    }
    return NULL;
}

#define WHERE_PATH(node)                                                                         \
    char where_[600], path_[300];                                                                \
    cfg_where((node), where_, sizeof where_);                                                    \
    cfg_path((node), path_, sizeof path_)

static abl_status missing(cfg_node *map, const char *key, const char *what, abl_error *err)
{
    char where[600], path[300];
    if (map && map->parent) {
        cfg_where(map, where, sizeof where);
        cfg_path(map, path, sizeof path);
        return abl_fail(err, ABL_EINVAL, "%s: '%s' needs the key '%s' (%s)", where, path, key,
                        what);
    }
    return abl_fail(err, ABL_EINVAL, "%s: missing required key '%s' (%s)",
                    map ? map->origin : "scenario", key, what);
}

static void range_text(const cfg_range *r, char *buf, size_t len)
{
    if (!r) {
        snprintf(buf, len, "any finite number");
        return;
    }
    snprintf(buf, len, "%c%g, %g%c%s%s", r->lo_open ? '(' : '[', r->lo, r->hi,
             r->hi_open ? ')' : ']', r->unit ? " " : "", r->unit ? r->unit : "");
}

static int parse_number(const char *s, double *v)
{
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    while (*end == ' ') end++;
    if (end == s || *end || errno == ERANGE) return 0;
    *v = x;
    return 1;
}

/* YAML 1.1 spellings of NaN and infinity (.nan, .inf, -.Inf, ...). */
static int is_yaml_nonfinite(const char *s)
{
    if (*s == '+' || *s == '-') s++;
    return !strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN") ||
           !strcmp(s, ".inf") || !strcmp(s, ".Inf") || !strcmp(s, ".INF");
}

/* A well-formed number a double cannot hold: too large (strtod sets ERANGE and returns
 * HUGE_VAL), or so small that it underflows (ERANGE and a denormal or 0: "1e-320" was called
 * "expected a number"; an adversarial test, session 30). */
static int overflows(const char *s)
{
    char *end;
    errno = 0;
    (void)strtod(s, &end);
    return end != s && *end == '\0' && errno == ERANGE;
}

abl_status cfg_node_double(cfg_node *node, const cfg_range *range, double *out, abl_error *err)
{
    WHERE_PATH(node);
    char allowed[160];
    range_text(range, allowed, sizeof allowed);
    double v;
    if (node->kind == CFG_SCALAR && node->quoted)
        return abl_fail(err, ABL_EINVAL,
                        "%s: '%s' = \"%s\": a quoted string where a number belongs; remove the "
                        "quotes (allowed %s)",
                        where_, path_, node->value, allowed);
    if (node->kind == CFG_SCALAR && is_yaml_nonfinite(node->value))
        return abl_fail(err, ABL_EINVAL, "%s: '%s' = %s: must be finite, allowed %s", where_,
                        path_, node->value, allowed);
    if (node->kind == CFG_SCALAR && overflows(node->value))
        return abl_fail(err, ABL_EINVAL,
                        "%s: '%s' = %s is out of range (beyond double precision: too large "
                        "or too close to 0); allowed %s",
                        where_, path_, node->value, allowed);
    if (node->kind != CFG_SCALAR || !parse_number(node->value, &v))
        return abl_fail(err, ABL_EINVAL, "%s: '%s' = %s: expected a number, allowed %s", where_,
                        path_, node->kind == CFG_SCALAR ? node->value : "(a list or mapping)",
                        allowed);
    if (!isfinite(v))
        return abl_fail(err, ABL_EINVAL, "%s: '%s' = %s: must be finite, allowed %s", where_, path_,
                        node->value, allowed);
    if (range) {
        int bad = range->lo_open ? !(v > range->lo) : !(v >= range->lo);
        bad |= range->hi_open ? !(v < range->hi) : !(v <= range->hi);
        if (bad)
            return abl_fail(err, ABL_EINVAL, "%s: '%s' = %s is out of range; allowed %s", where_,
                            path_, node->value, allowed);
    }
    *out = v;
    return ABL_OK;
}

abl_status cfg_get_double(cfg_node *map, const char *key, bool required, double def,
                          const cfg_range *range, double *out, abl_error *err)
{
    cfg_node *n = cfg_get(map, key);
    if (!n) {
        if (required) {
            char allowed[160];
            range_text(range, allowed, sizeof allowed);
            return missing(map, key, allowed, err);
        }
        *out = def;
        return ABL_OK;
    }
    return cfg_node_double(n, range, out, err);
}

abl_status cfg_get_long(cfg_node *map, const char *key, bool required, long def, long lo, long hi,
                        long *out, abl_error *err)
{
    cfg_node *n = cfg_get(map, key);
    if (!n) {
        if (required) {
            char what[96];
            snprintf(what, sizeof what, "an integer in [%ld, %ld]", lo, hi);
            return missing(map, key, what, err);
        }
        *out = def;
        return ABL_OK;
    }
    WHERE_PATH(n);
    char *end = NULL;
    long v = 0;
    int ok = n->kind == CFG_SCALAR && !n->quoted;
    if (ok) {
        errno = 0;
        v = strtol(n->value, &end, 10);
        ok = end != n->value && *end == '\0' && errno == 0;
    }
    if (!ok)
        return abl_fail(err, ABL_EINVAL, "%s: '%s' = %s: expected an integer in [%ld, %ld]", where_,
                        path_, n->kind == CFG_SCALAR ? n->value : "(a list or mapping)", lo, hi);
    if (v < lo || v > hi)
        return abl_fail(err, ABL_EINVAL, "%s: '%s' = %ld is out of range; allowed [%ld, %ld]",
                        where_, path_, v, lo, hi);
    *out = v;
    return ABL_OK;
}

abl_status cfg_get_bool(cfg_node *map, const char *key, bool def, bool *out, abl_error *err)
{
    cfg_node *n = cfg_get(map, key);
    if (!n) {
        *out = def;
        return ABL_OK;
    }
    WHERE_PATH(n);
    if (n->kind == CFG_SCALAR && !n->quoted) {
        if (!strcmp(n->value, "true") || !strcmp(n->value, "yes") || !strcmp(n->value, "on")) {
            *out = true;
            return ABL_OK;
        }
        if (!strcmp(n->value, "false") || !strcmp(n->value, "no") || !strcmp(n->value, "off")) {
            *out = false;
            return ABL_OK;
        }
    }
    return abl_fail(err, ABL_EINVAL, "%s: '%s' = %s: expected true or false", where_, path_,
                    n->kind == CFG_SCALAR ? n->value : "(a list or mapping)");
}

abl_status cfg_get_string(cfg_node *map, const char *key, bool required, const char *def,
                          const char **out, abl_error *err)
{
    cfg_node *n = cfg_get(map, key);
    if (!n) {
        if (required) return missing(map, key, "a text value", err);
        *out = def;
        return ABL_OK;
    }
    if (n->kind != CFG_SCALAR || !n->value[0]) {
        WHERE_PATH(n);
        return abl_fail(err, ABL_EINVAL, "%s: '%s' must be a non-empty text value", where_, path_);
    }
    *out = n->value;
    return ABL_OK;
}

abl_status cfg_get_enum(cfg_node *map, const char *key, bool required, int def,
                        const char *const *names, int count, int *out, abl_error *err)
{
    char list[400];
    size_t pos = 0;
    list[0] = '\0';
    for (int i = 0; i < count && pos < sizeof list; i++) {
        int w = snprintf(list + pos, sizeof list - pos, "%s%s", i ? ", " : "", names[i]);
        if (w < 0) break;
        pos += (size_t)w;
    }
    cfg_node *n = cfg_get(map, key);
    if (!n) {
        if (required) {
            char what[440];
            snprintf(what, sizeof what, "one of: %s", list);
            return missing(map, key, what, err);
        }
        *out = def;
        return ABL_OK;
    }
    if (n->kind == CFG_SCALAR)
        for (int i = 0; i < count; i++)
            if (!strcmp(n->value, names[i])) {
                *out = i;
                return ABL_OK;
            }
    WHERE_PATH(n);
    return abl_fail(err, ABL_EINVAL, "%s: '%s' = %s is not allowed; use one of: %s", where_, path_,
                    n->kind == CFG_SCALAR ? n->value : "(a list or mapping)", list);
}

abl_status cfg_get_vec(cfg_node *map, const char *key, bool required, const double *def, int n,
                       const cfg_range *range, double *out, abl_error *err)
{
    cfg_node *node = cfg_get(map, key);
    if (!node) {
        if (required) {
            char what[64];
            snprintf(what, sizeof what, "a list of %d numbers", n);
            return missing(map, key, what, err);
        }
        for (int i = 0; i < n; i++) out[i] = def ? def[i] : 0.0;
        return ABL_OK;
    }
    if (node->kind != CFG_SEQ || node->n != (size_t)n) {
        WHERE_PATH(node);
        /* the example has n entries (it said [1, 1, 1] for every n) */
        char eg[64] = "[";
        for (int i = 0; i < n && i < 8; i++)
            snprintf(eg + strlen(eg), sizeof eg - strlen(eg), "%s1", i ? ", " : "");
        snprintf(eg + strlen(eg), sizeof eg - strlen(eg), "%s]", n > 8 ? ", ..." : "");
        return abl_fail(err, ABL_EINVAL, "%s: '%s' must be a list of %d numbers, e.g. %s",
                        where_, path_, n, eg);
    }
    for (int i = 0; i < n; i++) {
        abl_status st = cfg_node_double(node->items[i], range, &out[i], err);
        if (st) return st;
    }
    return ABL_OK;
}

abl_status cfg_expect(cfg_node *node, cfg_kind kind, bool required, const char *what,
                      abl_error *err)
{
    if (!node) {
        if (!required) return ABL_OK;
        return abl_fail(err, ABL_EINVAL, "missing %s", what);
    }
    if (node->kind != kind) {
        WHERE_PATH(node);
        return abl_fail(err, ABL_EINVAL, "%s: '%s' must be %s", where_, path_, what);
    }
    return ABL_OK;
}

abl_status cfg_check_keys(const cfg_node *map, const char *const *allowed, abl_error *err)
{
    if (!map || map->kind != CFG_MAP) return ABL_OK;
    for (size_t i = 0; i < map->n; i++) {
        const char *key = map->items[i]->key;
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(*a, key)) ok = 1;
        if (ok) continue;
        char list[600];
        size_t pos = 0;
        list[0] = '\0';
        for (const char *const *a = allowed; *a && pos < sizeof list; a++) {
            int w = snprintf(list + pos, sizeof list - pos, "%s%s", a == allowed ? "" : ", ", *a);
            if (w < 0) break;
            pos += (size_t)w;
        }
        WHERE_PATH(map->items[i]);
        return abl_fail(err, ABL_EINVAL, "%s: unknown key '%s'; allowed here: %s", where_, path_,
                        list);
    }
    return ABL_OK;
}

/* ---- key declarations: the allowed keys and the reference, from one table ---- */

void cfg_decl_names(const cfg_keytable *t, int variant, const char **names, size_t *n, size_t cap)
{
    for (size_t i = 0; i < t->n; i++) {
        const cfg_keydecl *d = &t->decl[i];
        if (!d->key || *n >= cap) continue;
        if (variant >= 0 && d->variants && (variant > 31 || !(d->variants & (1u << variant))))
            continue;
        names[(*n)++] = d->key;
    }
}

abl_status cfg_check_decl(const cfg_node *map, const cfg_keytable *t, int variant, abl_error *err)
{
    /* 64: well above any map's keys (the longest has 15) */
    const char *allowed[65];
    size_t n = 0;
    cfg_decl_names(t, variant, allowed, &n, 64);
    allowed[n] = NULL;
    return cfg_check_keys(map, allowed, err);
}

/* One reference cell: " text |", or " |" when empty (the hand-written table's spelling). */
static int md_cell(FILE *f, const char *text)
{
    if (!text || !*text) return fputs(" |", f) == EOF ? -1 : 0;
    return fprintf(f, " %s |", text) < 0 ? -1 : 0;
}

int cfg_decl_markdown(FILE *f, const cfg_keytable *t, const char *prefix)
{
    for (size_t i = 0; i < t->n; i++) {
        const cfg_keydecl *d = &t->decl[i];
        if (!d->label || *d->label) {
            int r = d->label ? fprintf(f, "| %s |", d->label)
                             : fprintf(f, "| `%s%s` |", prefix ? prefix : "", d->key ? d->key : "");
            if (r < 0 || md_cell(f, d->unit) || md_cell(f, d->deflt) || md_cell(f, d->allowed) ||
                md_cell(f, d->meaning) || fputc('\n', f) == EOF)
                return -1;
        }
        if (d->sub && cfg_decl_markdown(f, d->sub, d->sub_prefix)) return -1;
    }
    return 0;
}

/* ---- trees as values: copy, append, write back (the planner builds scenarios this way) ---- */

cfg_node *cfg_clone(const cfg_node *src)
{
    if (!src) return NULL;
    cfg_node *n = node_new(src->kind, src->line, src->origin);
    if (!n) return NULL;
    n->quoted = src->quoted;
    if ((src->key && !(n->key = xstrdup(src->key))) ||
        (src->value && !(n->value = xstrdup(src->value)))) {
        cfg_free(n);
        return NULL;
    }
    for (size_t i = 0; i < src->n; i++) {
        cfg_node *c = cfg_clone(src->items[i]);
        if (!c || node_append(n, c)) {
            cfg_free(c);
            cfg_free(n);
            return NULL;
        }
    }
    return n;
}

int cfg_append(cfg_node *seq, cfg_node *child)
{
    if (!seq || !child || seq->kind == CFG_SCALAR) return -1;
    return node_append(seq, child);
}

cfg_node *cfg_detach(cfg_node *parent, size_t i)
{
    if (!parent || i >= parent->n) return NULL;
    cfg_node *c = parent->items[i];
    memmove(&parent->items[i], &parent->items[i + 1], (parent->n - i - 1) * sizeof *parent->items);
    parent->n--;
    c->parent = NULL;
    return c;
}

/* A key or scalar that YAML reads back as the same plain text: letters, digits and a few
 * punctuation marks that never start or end a YAML construct here. Anything else is written
 * double-quoted (keys) or kept as the author wrote it (plain values came from plain text). */
static bool plain_key(const char *s)
{
    if (!*s) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

static void emit_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void emit_scalar(FILE *f, const cfg_node *n)
{
    const char *v = n->value ? n->value : "";
    if (n->quoted || !*v)
        emit_quoted(f, v);
    else
        fputs(v, f);
}

/* A sequence of scalars fits on one line in flow style: [1, 2, 3]. */
static bool flat_seq(const cfg_node *n)
{
    if (n->kind != CFG_SEQ || n->n > 16) return false;
    for (size_t i = 0; i < n->n; i++) {
        const cfg_node *c = n->items[i];
        if (c->kind != CFG_SCALAR) return false;
        if (!c->quoted && c->value && strpbrk(c->value, ",[]{}#&*!|>'\"%@`")) return false;
    }
    return true;
}

static void emit_node(FILE *f, const cfg_node *n, int indent);

static void emit_value(FILE *f, const cfg_node *c, int indent)
{
    if (c->kind == CFG_SCALAR) {
        fputc(' ', f);
        emit_scalar(f, c);
        fputc('\n', f);
    } else if (c->n == 0) {
        fputs(c->kind == CFG_MAP ? " {}\n" : " []\n", f);
    } else if (flat_seq(c)) {
        fputs(" [", f);
        for (size_t i = 0; i < c->n; i++) {
            if (i) fputs(", ", f);
            emit_scalar(f, c->items[i]);
        }
        fputs("]\n", f);
    } else {
        fputc('\n', f);
        emit_node(f, c, indent + 2);
    }
}

static void emit_node(FILE *f, const cfg_node *n, int indent)
{
    for (size_t i = 0; i < n->n; i++) {
        const cfg_node *c = n->items[i];
        fprintf(f, "%*s", indent, "");
        if (n->kind == CFG_MAP) {
            if (plain_key(c->key))
                fputs(c->key, f);
            else
                emit_quoted(f, c->key);
            fputc(':', f);
        } else {
            fputc('-', f);
        }
        emit_value(f, c, indent);
    }
}

int cfg_emit(FILE *f, const cfg_node *root)
{
    if (!root) return -1;
    if (root->kind == CFG_SCALAR) {
        emit_scalar(f, root);
        fputc('\n', f);
    } else {
        emit_node(f, root, 0);
    }
    return ferror(f) ? -1 : 0;
}
