/* device.c - named device presets: configs/devices.yaml and the grafting of a preset's values
 * into a source entry (device.h; docs/DEVICES.md). */
#include <stdlib.h>
#include <string.h>

#include "ablasim/device.h"

static const cfg_keydecl value_decl[] = {
    CFG_KEY("value", "–", "required", "a scalar", "the key's value, as in a scenario"),
    CFG_KEY("source", "–", "required", "text", "where the number is published (citation)"),
};
static const cfg_keytable value_keys = CFG_KEYTABLE(value_decl);

static const cfg_keydecl device_decl[] = {
    CFG_KEY("type", "–", "required", "`rfa`, `mwa`, `cryo`", "source type the preset is for"),
    CFG_KEY("title", "–", "required", "text", "maker, family, model"),
    CFG_KEY("not_modelled", "–", "required", "text", "what of the device the model leaves out"),
    CFG_KEY("values", "–", "required", "mapping", "key path -> {value, source}"),
};
static const cfg_keytable device_keys = CFG_KEYTABLE(device_decl);

static const cfg_keydecl top_decl[] = {
    CFG_KEY("devices", "–", "required", "mapping", "preset name -> preset"),
};
static const cfg_keytable top_keys = CFG_KEYTABLE(top_decl);

/* Whether dotted path p ("generator.mode", "electrodes[].type") names a key of table t: each
 * segment a declared key; "name[]" and an inner segment need the row's sub table. */
static bool path_declared(const cfg_keytable *t, const char *p)
{
    while (t) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        bool list = len > 2 && !strncmp(p + len - 2, "[]", 2);
        size_t klen = list ? len - 2 : len;
        const cfg_keydecl *row = NULL;
        for (size_t i = 0; i < t->n && !row; i++)
            if (t->decl[i].key && strlen(t->decl[i].key) == klen &&
                !strncmp(t->decl[i].key, p, klen))
                row = &t->decl[i];
        if (!row) return false;
        if (!dot) return !list;
        if (!row->sub) return false;
        t = row->sub;
        p = dot + 1;
    }
    return false;
}

void device_table_free(abl_device_table *t)
{
    if (!t) return;
    free(t->path);
    free(t->devices);
    cfg_free(t->root);
    memset(t, 0, sizeof *t);
}

static abl_status parse_device(cfg_node *e, abl_device_keys_fn keys_of, abl_device *d,
                               abl_error *err)
{
    char where[600], path[300];
    abl_status st;
    const char *type, *text;
    if ((st = cfg_expect(e, CFG_MAP, true, "a device preset (type, title, values, ...)", err)) ||
        (st = cfg_check_decl(e, &device_keys, CFG_ALL_VARIANTS, err)) ||
        (st = cfg_get_string(e, "type", true, NULL, &type, err)) ||
        (st = cfg_get_string(e, "title", true, NULL, &text, err)) ||
        (st = cfg_get_string(e, "not_modelled", true, NULL, &text, err)))
        return st;
    snprintf(d->name, sizeof d->name, "%s", e->key);
    d->line = e->line;
    const cfg_keytable *keys = keys_of ? keys_of(type) : NULL;
    cfg_node *tn = cfg_get(e, "type");
    if (!keys || strlen(type) >= sizeof d->type)
        return abl_fail(err, ABL_EINVAL, "%s: '%s' = %s: allowed rfa, mwa or cryo",
                        cfg_where(tn, where, sizeof where), cfg_path(tn, path, sizeof path), type);
    snprintf(d->type, sizeof d->type, "%s", type);
    cfg_node *vals = cfg_get(e, "values");
    if ((st = cfg_expect(vals, CFG_MAP, true, "a mapping of key path -> {value, source}", err)))
        return st;
    if (vals->n == 0 || vals->n > ABL_DEVICE_MAX_VALUES)
        return abl_fail(err, ABL_EINVAL, "%s: '%s' has %zu values; allowed 1 to %d",
                        cfg_where(vals, where, sizeof where), cfg_path(vals, path, sizeof path),
                        vals->n, ABL_DEVICE_MAX_VALUES);
    for (size_t i = 0; i < vals->n; i++) {
        cfg_node *v = vals->items[i];
        abl_device_value *dv = &d->values[d->nvalues];
        if (!path_declared(keys, v->key) || !strcmp(v->key, "device") ||
            strlen(v->key) >= sizeof dv->path)
            return abl_fail(err, ABL_EINVAL,
                            "%s: '%s': '%s' is not a key of a %s source (write it as in a "
                            "scenario: generator.mode, electrodes[].gauge, probes[].gauge, ...)",
                            cfg_where(v, where, sizeof where), cfg_path(v, path, sizeof path),
                            v->key, type);
        const char *src;
        if ((st = cfg_expect(v, CFG_MAP, true, "a mapping {value, source}", err)) ||
            (st = cfg_check_decl(v, &value_keys, CFG_ALL_VARIANTS, err)) ||
            (st = cfg_get_string(v, "source", true, NULL, &src, err)))
            return st;
        cfg_node *val = cfg_get(v, "value");
        if (!val || val->kind != CFG_SCALAR || strlen(val->value) >= sizeof dv->value ||
            !src[0] || !strcmp(src, "~")) {
            cfg_node *n = val ? val : v;
            return abl_fail(err, ABL_EINVAL,
                            "%s: '%s' needs 'value' (a scalar, < %zu characters) and a non-empty "
                            "'source' (every preset number is sourced; leave unpublished ones "
                            "out)",
                            cfg_where(n, where, sizeof where), cfg_path(v, path, sizeof path),
                            sizeof dv->value);
        }
        snprintf(dv->path, sizeof dv->path, "%s", v->key);
        snprintf(dv->value, sizeof dv->value, "%s", val->value);
        dv->line = val->line;
        dv->node = val;
        d->nvalues++;
    }
    return ABL_OK;
}

abl_status device_table_load(const char *path, abl_device_keys_fn keys_of, abl_device_table *out,
                             abl_error *err)
{
    memset(out, 0, sizeof *out);
    abl_device_table t = {0};
    abl_status st = cfg_load_file(path, &t.root, err);
    char where[600];
    if (st) return st;
    if (!(t.path = strdup(path))) {
        st = abl_fail(err, ABL_ENOMEM, "out of memory");
        goto fail;
    }
    if ((st = cfg_check_decl(t.root, &top_keys, CFG_ALL_VARIANTS, err))) goto fail;
    cfg_node *list = cfg_get(t.root, "devices");
    if ((st = cfg_expect(list, CFG_MAP, true, "a mapping 'devices' of preset name -> preset",
                         err)))
        goto fail;
    t.devices = calloc(list->n ? list->n : 1, sizeof *t.devices);
    if (!t.devices) {
        st = abl_fail(err, ABL_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < list->n; i++) {
        if (strlen(list->items[i]->key) >= ABL_DEVICE_NAME_LEN) {
            st = abl_fail(err, ABL_EINVAL, "%s: preset name '%s' is longer than %d characters",
                          cfg_where(list->items[i], where, sizeof where), list->items[i]->key,
                          ABL_DEVICE_NAME_LEN - 1);
            goto fail;
        }
        if ((st = parse_device(list->items[i], keys_of, &t.devices[i], err))) goto fail;
        t.ndevices++;
    }
    *out = t;
    return ABL_OK;
fail:
    device_table_free(&t);
    return st;
}

/* "a, b, c" of the presets of type (all presets when type is NULL) */
static void device_names(const abl_device_table *t, const char *type, char *buf, size_t len)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (int i = 0; i < t->ndevices && pos < len; i++)
        if (!type || !strcmp(t->devices[i].type, type))
            pos += (size_t)snprintf(buf + pos, len - pos, "%s%s", pos ? ", " : "",
                                    t->devices[i].name);
    if (!buf[0]) snprintf(buf, len, "(none)");
}

abl_status device_lookup(cfg_node *entry, const char *type, const abl_device_table *t,
                         const abl_device **out, abl_error *err)
{
    char where[600], path[300], names[1200];
    *out = NULL;
    cfg_node *n = cfg_get(entry, "device");
    if (!n) return ABL_OK;
    device_names(t, type, names, sizeof names);
    if (n->kind != CFG_SCALAR)
        return abl_fail(err, ABL_EINVAL,
                        "%s: '%s' must be a preset name from %s; allowed for type %s: %s",
                        cfg_where(n, where, sizeof where), cfg_path(n, path, sizeof path),
                        t->path, type, names);
    for (int i = 0; i < t->ndevices; i++) {
        const abl_device *d = &t->devices[i];
        if (strcmp(d->name, n->value)) continue;
        if (strcmp(d->type, type))
            return abl_fail(err, ABL_EINVAL,
                            "%s: '%s' = %s is a preset of type %s (%s:%d); a source of type %s takes one of: %s",
                            cfg_where(n, where, sizeof where), cfg_path(n, path, sizeof path),
                            n->value, d->type, t->path, d->line, type, names);
        *out = d;
        return ABL_OK;
    }
    return abl_fail(err, ABL_EINVAL,
                    "%s: '%s' = %s is not a device preset in %s; allowed for type %s: %s",
                    cfg_where(n, where, sizeof where), cfg_path(n, path, sizeof path), n->value,
                    t->path, type, names);
}

/* Child map `key` of map m, created (origin and line of m) when absent; NULL when m has a
 * non-map there (the parser reports that) or out of memory (*oom). */
static cfg_node *child_map(cfg_node *m, const char *key, bool *oom)
{
    cfg_node *c = cfg_get(m, key);
    if (c) return c->kind == CFG_MAP ? c : NULL;
    abl_error e;
    if (cfg_parse_string("{}", m->origin, &c, &e) || !c) {
        *oom = true;
        return NULL;
    }
    c->line = m->line;
    if (!(c->key = strdup(key)) || cfg_append(m, c)) {
        cfg_free(c);
        *oom = true;
        return NULL;
    }
    return c;
}

/* Graft value v under map m at the rest of its path p; *done when applied. */
static int graft(cfg_node *m, const char *p, const abl_device *dev, const abl_device_value *v,
                 bool *done)
{
    const char *dot = strchr(p, '.');
    if (!dot) {
        if (cfg_get(m, p)) return 0; /* the scenario sets it: it wins */
        /* keys that exclude each other (the parsers take exactly one): the scenario's choice
         * of the other one wins too */
        static const char *const alt[][2] = {{"gauge", "diameter_mm"}, {"power_W", "schedule"}};
        for (size_t a = 0; a < sizeof alt / sizeof alt[0]; a++)
            for (int k = 0; k < 2; k++)
                if (!strcmp(p, alt[a][k]) && cfg_get(m, alt[a][1 - k])) return 0;
        /* a selector beside it (mode / type) set by the scenario to another value than the
         * preset's: this key belongs to the preset's variant, not the scenario's */
        for (int i = 0; i < dev->nvalues; i++) {
            const abl_device_value *s = &dev->values[i];
            size_t plen = (size_t)(p - v->path);
            const char *leaf = s->path + plen;
            if (strncmp(s->path, v->path, plen) || strchr(leaf, '.') ||
                (strcmp(leaf, "mode") && strcmp(leaf, "type")))
                continue;
            cfg_node *sel = cfg_get(m, leaf);
            if (sel && sel->kind == CFG_SCALAR && strcmp(sel->value, s->value)) return 0;
        }
        cfg_node *c = cfg_clone(v->node);
        if (!c) return -1;
        free(c->key);
        if (!(c->key = strdup(p)) || cfg_append(m, c)) {
            cfg_free(c);
            return -1;
        }
        *done = true;
        return 0;
    }
    char seg[64];
    size_t len = (size_t)(dot - p);
    if (len >= sizeof seg) return 0;
    memcpy(seg, p, len);
    seg[len] = '\0';
    if (len > 2 && !strcmp(seg + len - 2, "[]")) {
        /* every item of the scenario's list; an absent list is the parser's to report */
        seg[len - 2] = '\0';
        cfg_node *list = cfg_get(m, seg);
        if (!list || list->kind != CFG_SEQ) return 0;
        for (size_t i = 0; i < list->n; i++)
            if (list->items[i]->kind == CFG_MAP &&
                graft(list->items[i], dot + 1, dev, v, done))
                return -1;
        return 0;
    }
    bool oom = false;
    cfg_node *c = child_map(m, seg, &oom);
    if (oom) return -1;
    return c ? graft(c, dot + 1, dev, v, done) : 0;
}

abl_status device_apply(cfg_node *entry, const abl_device *dev, bool *applied, abl_error *err)
{
    for (int i = 0; i < dev->nvalues; i++) {
        applied[i] = false;
        if (graft(entry, dev->values[i].path, dev, &dev->values[i], &applied[i]))
            return abl_fail(err, ABL_ENOMEM, "out of memory");
    }
    return ABL_OK;
}
