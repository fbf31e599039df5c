/* fuzz_config.c - libFuzzer harness for the YAML tree and --set grafting (config.h), the code
 * every scenario, tissue table and sweep file goes through.
 *
 * Input: the first line is a --set assignment (KEY=VALUE, as typed after --set; an empty first
 * line means none), the rest is the YAML document. When the document does not parse, the
 * assignment is grafted onto an empty mapping instead, so both halves are always exercised.
 * Every node of the result is then visited with the position helpers and the typed readers the
 * schema uses: they format messages from node contents (keys, values, paths of any depth), the
 * likeliest place for a buffer bug.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/config.h"
#include "fuzz_common.h"

static void check_node(cfg_node *node)
{
    char where[600], path[300], tiny[7];
    abl_error err = {0};
    cfg_where(node, where, sizeof where);
    cfg_path(node, path, sizeof path);
    cfg_where(node, tiny, sizeof tiny);
    cfg_path(node, tiny, sizeof tiny);
    cfg_expect(node, CFG_MAP, true, "a mapping", &err);
    cfg_expect(node, CFG_SEQ, false, "a list", &err);
    if (node->kind == CFG_SCALAR) {
        static const cfg_range r = {0, 100, true, false, "mm"};
        double d;
        cfg_node_double(node, &r, &d, &err);
        cfg_node_double(node, NULL, &d, &err);
        return;
    }
    if (node->kind == CFG_MAP) {
        static const char *const names[] = {"explicit", "implicit", "sphere"};
        static const char *const allowed[] = {"name", "grid", "dims", "type", NULL};
        static const cfg_range r = {-200, 200, false, false, "degC"};
        static const double def[3] = {1, 2, 3};
        for (size_t i = 0; i < node->n; i++) {
            const char *key = node->items[i]->key;
            double d, v[3];
            long l;
            bool b;
            const char *s;
            int e;
            cfg_get_double(node, key, true, 0, &r, &d, &err);
            cfg_get_long(node, key, false, 0, -5, 4096, &l, &err);
            cfg_get_bool(node, key, false, &b, &err);
            cfg_get_string(node, key, false, NULL, &s, &err);
            cfg_get_enum(node, key, false, 0, names, 3, &e, &err);
            cfg_get_vec(node, key, false, def, 3, &r, v, &err);
        }
        /* a key no input has: the "missing required key" messages */
        double d;
        cfg_get_double(node, "\x01missing", true, 0, &r, &d, &err);
        cfg_check_keys(node, allowed, &err);
    }
}

/* Depth-first over the tree with an explicit stack: a --set key can create a path thousands of
 * segments deep (the parser bounds only document nesting, to 64). */
static void visit(cfg_node *root)
{
    size_t n = 1, cap = 64;
    cfg_node **stack = malloc(cap * sizeof *stack);
    if (!stack) abort();
    stack[0] = root;
    while (n) {
        cfg_node *node = stack[--n];
        check_node(node);
        if (n + node->n > cap) {
            cap = 2 * (n + node->n);
            stack = realloc(stack, cap * sizeof *stack);
            if (!stack) abort();
        }
        for (size_t i = 0; i < node->n; i++)
            stack[n++] = node->items[i];
    }
    free(stack);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fz_strndup(data, size);
    char *doc = strchr(text, '\n');
    const char *set = NULL;
    if (doc) {
        *doc++ = '\0';
        if (text[0]) set = text;
    } else {
        doc = text;
    }
    abl_error err = {0};
    cfg_node *root = NULL;
    fz_capture_begin();
    if (cfg_parse_string(doc, "fuzz.yaml", &root, &err) != ABL_OK) {
        if (root) abort(); /* a failed parse must not hand out a tree */
        if (cfg_parse_string("{}", "empty.yaml", &root, &err) != ABL_OK) abort();
    }
    if (set) cfg_set(root, set, &err);
    visit(root);
    cfg_free(root);
    fz_capture_end();
    free(text);
    return 0;
}
