/* undo.h - keep the previous versions of a set of files until all their new versions are in
 * place (private to src/: the margin files and maps, the sweep table, the planner's outputs).
 *
 * A command that replaces several files, each atomically (atomic_file.h), one after the
 * other, would leave new files beside old ones if a later rename failed (an I/O error, found
 * by the failing-call property of the safety suite). Before the first is replaced, undo_begin
 * keeps every existing member as "<member>.before-<tag>.tmp" (a hard link, so nothing is copied; a copy
 * where the file system has no hard links) and writes MARKER, the list of the members and
 * which of them existed. Then the command writes and renames as it always did:
 *
 *   abl_undo u;
 *   int e = undo_begin(&u, marker, "margin", members, n);   // nothing replaced yet
 *   ... replace the members (atomic_rename / atomic_commit / output_finish ...) ...
 *   if (!e && !failed) e = undo_end(&u);            // keep the new set, drop the old copies
 *   if (e || failed) e2 = undo_restore(&u);         // the old set again, the new files gone
 *   undo_free(&u);
 *
 * A command killed in between leaves MARKER: undo_recover, which the next command of the same
 * kind runs before anything else, restores the old set. So the set is always all old or all
 * new, never a mix. The marker names the members relative to its own directory, so a moved or
 * copied output directory recovers its own files. Functions returning int give 0 or an errno
 * value. */
#ifndef ABLASIM_UNDO_H
#define ABLASIM_UNDO_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *marker;   /* the undo log; present on disk while the set may be mixed */
    int n;          /* members */
    char **path;    /* each member's final name, absolute */
    char **old;     /* path + ".before-<tag>.tmp": its previous version while active */
    bool *had_old;  /* the member existed when undo_begin ran */
    struct undo_new_id *id; /* the new version's identity where known (undo_begin_new) */
    bool active;    /* begun and neither ended nor restored */
    const char *failed; /* after a failing undo_begin: the file it failed on (u's own names) */
} abl_undo;

/* Keep the current version of each of the n members (absolute or relative paths; a member
 * that does not exist is recorded as new) and write marker. tag (a word: "margin", "sweep",
 * "plan") names the previous versions, so that logs of nested commands never share one. On failure nothing is left
 * behind and nothing was changed; u needs only undo_free. A member whose name holds a newline
 * is refused (EINVAL): the marker is one name per line. */
int undo_begin(abl_undo *u, const char *marker, const char *tag, const char *const *members,
               int n);
/* The same, with news[i] the complete file that will be renamed onto members[i] (its
 * temporary; NULL where unknown). Its device and inode go into the log, and a restore then
 * touches a member only while it is that new file or the kept previous version: a file another
 * command put under the name since (the maps of two margins with one --nifti prefix; found by
 * an adversarial review, session 23) is left as it is, and the previous version is dropped. */
int undo_begin_new(abl_undo *u, const char *marker, const char *tag,
                   const char *const *members, const char *const *news, int n);
/* The new set is complete: remove the marker (first: from then on the old copies are only
 * leftovers), then the old copies. A marker that cannot be removed is an error (the next
 * recovery would restore the old set): the caller then restores. */
int undo_end(abl_undo *u);
/* Put the old set back: each member that existed gets its old version again, each that did
 * not is removed; then the marker goes. The first failure's errno is returned; the marker and
 * the old copies are then kept for undo_recover. */
int undo_restore(abl_undo *u);
/* Release u (files are not touched). Safe on a zeroed or failed abl_undo. */
void undo_free(abl_undo *u);
/* If marker exists, restore the set it lists (as undo_restore) and remove it; *restored tells
 * whether there was one. A marker that is not ablasim's is left alone (EINVAL). On failure
 * *failed (if given) names the file it failed on (static storage or marker). */
int undo_recover(const char *marker, bool *restored, const char **failed);
/* Drop a log without restoring: the marker, then the previous versions it names. For a log
 * nested in a set whose own log restores the same members (the planner's margin files). */
int undo_discard(const char *marker);

#endif
