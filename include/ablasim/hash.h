/* hash.h - the one byte hash of ablasim: FNV-1a, 64 bit.
 *
 * What it is for: noticing that an input changed. Sweep and plan journals key their rows with
 * it, a checkpoint records the device presets file's bytes with it, and the kernel's generator
 * table finds its coefficient records with it (in memory only: records are numbered in the
 * order they are inserted, so the slot a hash picks never reaches a result; its private copy
 * before session 24 started from a mistyped offset basis, 1469598103934665603, the decimal
 * basis with its last digit dropped, found by review). FNV-1a (Fowler, Noll, Vo; offset basis
 * 0xcbf29ce484222325, prime 0x100000001b3) is not cryptographic: it detects a changed file, not
 * a forged one. Its values are written into journals and checkpoints, so they are part of those
 * formats: never change the function or the constants.
 *
 * (Checkpoints also hold digests of fields and tissue rows, which use a word-wise hash of their
 * own in checkpoint.c; those are compared only with themselves.)
 */
#ifndef ABLASIM_HASH_H
#define ABLASIM_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ABL_FNV1A_INIT 0xcbf29ce484222325ULL

/* h folded with n bytes of data (start with ABL_FNV1A_INIT). */
static inline uint64_t abl_fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* h folded with the bytes of the file at path, read to its end. With mark_presence, one byte
 * (1: the file could be opened, 0: not) is folded in first, so that a file which appears or
 * vanishes changes the value even when it is empty. A file that cannot be opened, or is not a
 * regular file (a FIFO, a device, a directory: never read, so never blocks), adds nothing
 * else; *opened (may be NULL) says which it was. (Until session 28 a directory or /dev/null
 * counted as opened and empty: a journal naming one as an input changed its fingerprint
 * then; a regular file's value is the same as before.) */
uint64_t abl_fnv1a_file(uint64_t h, const char *path, bool mark_presence, bool *opened);

#endif
