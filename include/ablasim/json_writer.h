/* json_writer.h - the one JSON emitter (result summary, margin summary).
 *
 * Streams to a FILE: escaping, commas and indentation follow from the calls. A block
 * container puts each member on its own line, indented two spaces per level; an inline one
 * (and everything inside it) stays on one line, members separated by ", ". Numbers are printed
 * as the shortest of %.15g, %.16g, %.17g that reads back to the same double (json_fmt_double);
 * NaN and infinities, which JSON lacks, as null. Keys are given with every value inside an
 * object and are NULL inside arrays and for the top-level value. */
#ifndef ABLASIM_JSON_WRITER_H
#define ABLASIM_JSON_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

typedef struct {
    FILE *f;
    int depth;                       /* open containers */
    int count[JSON_MAX_DEPTH];       /* members written into each */
    bool inline_[JSON_MAX_DEPTH];    /* container kept on one line */
    bool array[JSON_MAX_DEPTH];
} abl_json;

/* Length of the well-formed UTF-8 sequence at p (RFC 3629), 0 if the bytes there are not one
 * (strings are written with such bytes as U+FFFD; file names with them are refused as outputs,
 * fileguard.h). */
int json_utf8_len(const unsigned char *p);

/* Shortest round-trip text of v (NaN/inf: "null"); len >= 32. */
void json_fmt_double(char *buf, size_t len, double v);

void json_init(abl_json *j, FILE *f);
void json_begin_object(abl_json *j, const char *key, bool inline_);
void json_end_object(abl_json *j);
void json_begin_array(abl_json *j, const char *key, bool inline_);
void json_end_array(abl_json *j);
void json_num(abl_json *j, const char *key, double v);
void json_int(abl_json *j, const char *key, long long v);
void json_uint(abl_json *j, const char *key, unsigned long long v);
void json_str(abl_json *j, const char *key, const char *s); /* NULL: "" */
void json_bool(abl_json *j, const char *key, bool v);
void json_null(abl_json *j, const char *key);
/* An inline array of n numbers, each multiplied by scale. */
void json_num_array(abl_json *j, const char *key, const double *v, int n, double scale);
void json_int_array(abl_json *j, const char *key, const int *v, int n);
/* After the top-level value: the final newline. 0, or -1 when the stream has an error. */
int json_finish(abl_json *j);

#endif
