/* json_writer.c - the JSON emitter (json_writer.h). */
#include "ablasim/json_writer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void json_fmt_double(char *buf, size_t len, double v)
{
    if (!isfinite(v)) {
        snprintf(buf, len, "null");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        const double back = strtod(buf, NULL);
        if (memcmp(&back, &v, sizeof v) == 0) return;
    }
}

void json_init(abl_json *j, FILE *f)
{
    memset(j, 0, sizeof *j);
    j->f = f;
}

static void indent(abl_json *j, int level)
{
    fputc('\n', j->f);
    for (int i = 0; i < level; i++)
        fputs("  ", j->f);
}

/* RFC 3629: no overlong forms, no surrogates, at most U+10FFFF */
int json_utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80) return 1;
    int n;
    unsigned min;
    unsigned cp;
    if ((p[0] & 0xe0) == 0xc0) n = 2, min = 0x80, cp = p[0] & 0x1f;
    else if ((p[0] & 0xf0) == 0xe0) n = 3, min = 0x800, cp = p[0] & 0x0f;
    else if ((p[0] & 0xf8) == 0xf0) n = 4, min = 0x10000, cp = p[0] & 0x07;
    else return 0;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0; /* also stops at the terminating NUL */
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

/* A JSON string (RFC 8259): quotes, backslashes and control characters escaped; a byte that
 * is not part of well-formed UTF-8 (a file name in another encoding) is written as U+FFFD, so
 * the summary stays valid JSON for a strict reader (it was raw: an adversarial test,
 * session 27). */
static void put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p;) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                fprintf(f, "\\u%04x", *p);
            } else {
                const int n = json_utf8_len(p);
                if (n == 0) {
                    fputs("\\ufffd", f);
                } else {
                    fwrite(p, 1, (size_t)n, f);
                    p += n;
                    continue;
                }
            }
        }
        p++;
    }
    fputc('"', f);
}

/* Separator, line break and key before a value in the current container. */
static void member(abl_json *j, const char *key)
{
    if (j->depth > 0) {
        const int d = j->depth - 1;
        if (j->count[d]++) fputc(',', j->f);
        if (j->inline_[d]) {
            if (j->count[d] > 1) fputc(' ', j->f);
        } else {
            indent(j, j->depth);
        }
        if (!j->array[d]) {
            put_string(j->f, key);
            fputs(": ", j->f);
        }
    }
}

static void begin(abl_json *j, const char *key, bool inline_, bool array)
{
    member(j, key);
    fputc(array ? '[' : '{', j->f);
    if (j->depth >= JSON_MAX_DEPTH) abort(); /* a programming error: nesting is static */
    const bool parent_inline = j->depth > 0 && j->inline_[j->depth - 1];
    j->count[j->depth] = 0;
    j->inline_[j->depth] = inline_ || parent_inline;
    j->array[j->depth] = array;
    j->depth++;
}

static void end(abl_json *j, bool array)
{
    j->depth--;
    if (j->count[j->depth] > 0 && !j->inline_[j->depth]) indent(j, j->depth);
    fputc(array ? ']' : '}', j->f);
}

void json_begin_object(abl_json *j, const char *key, bool inline_)
{
    begin(j, key, inline_, false);
}

void json_end_object(abl_json *j)
{
    end(j, false);
}

void json_begin_array(abl_json *j, const char *key, bool inline_)
{
    begin(j, key, inline_, true);
}

void json_end_array(abl_json *j)
{
    end(j, true);
}

void json_num(abl_json *j, const char *key, double v)
{
    char buf[40];
    json_fmt_double(buf, sizeof buf, v);
    member(j, key);
    fputs(buf, j->f);
}

void json_int(abl_json *j, const char *key, long long v)
{
    member(j, key);
    fprintf(j->f, "%lld", v);
}

void json_uint(abl_json *j, const char *key, unsigned long long v)
{
    member(j, key);
    fprintf(j->f, "%llu", v);
}

void json_str(abl_json *j, const char *key, const char *s)
{
    member(j, key);
    put_string(j->f, s);
}

void json_bool(abl_json *j, const char *key, bool v)
{
    member(j, key);
    fputs(v ? "true" : "false", j->f);
}

void json_null(abl_json *j, const char *key)
{
    member(j, key);
    fputs("null", j->f);
}

void json_num_array(abl_json *j, const char *key, const double *v, int n, double scale)
{
    json_begin_array(j, key, true);
    for (int i = 0; i < n; i++)
        json_num(j, NULL, v[i] * scale);
    json_end_array(j);
}

void json_int_array(abl_json *j, const char *key, const int *v, int n)
{
    json_begin_array(j, key, true);
    for (int i = 0; i < n; i++)
        json_int(j, NULL, v[i]);
    json_end_array(j);
}

int json_finish(abl_json *j)
{
    fputc('\n', j->f);
    return ferror(j->f) ? -1 : 0;
}
