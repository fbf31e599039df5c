/* device.h - named device presets (`device: <name>` on an rfa, mwa or cryo source; issue 16).
 *
 * configs/devices.yaml lists commercial applicators (generator, electrode, antenna or probe
 * families) as the values of source keys they fix, every value with its published source; a
 * number that was not found published is left out, and the source's ordinary default (or the
 * user) supplies it. A source entry with `device: NAME` receives each preset value for a key it
 * does not set itself: what the scenario writes wins. The preset values are grafted into the
 * entry's tree before the modality parses it, with the devices file's line as their origin, so
 * a preset value is range-checked exactly like a typed one and a message about it names
 * devices.yaml:line. docs/DEVICES.md lists the presets and their sources.
 */
#ifndef ABLASIM_DEVICE_H
#define ABLASIM_DEVICE_H

#include <stdbool.h>
#include <stdio.h>

#include "ablasim/config.h"
#include "ablasim/status.h"

#define ABL_DEVICE_NAME_LEN 48
#define ABL_DEVICE_MAX_VALUES 16

/* One preset value: a source key as a dotted path ("generator.mode", "frequency_MHz",
 * "electrodes[].type": every item of the list) and its scalar YAML text. */
typedef struct {
    char path[64];
    char value[64];
    int line;              /* in the devices file */
    const cfg_node *node;  /* the value's node in the table's tree (origin and line) */
} abl_device_value;

typedef struct {
    char name[ABL_DEVICE_NAME_LEN];
    char type[16]; /* source type it belongs to: rfa, mwa, cryo */
    int line;      /* of its entry in the devices file */
    int nvalues;
    abl_device_value values[ABL_DEVICE_MAX_VALUES];
} abl_device;

typedef struct {
    char *path;     /* devices file */
    cfg_node *root; /* its tree: the values' nodes are cloned from it */
    int ndevices;
    abl_device *devices;
} abl_device_table;

/* Reads the devices file: top key `devices`, one mapping per preset with `type` (rfa, mwa or
 * cryo), `title`, `not_modelled` (texts) and `values`: key path -> {value, source} (both
 * required, source a non-empty text; value a scalar). Every key path must name a key of
 * keys_of(type)'s table (lists as `name[]`), so a typo in the file is an error naming its line.
 * keys_of returns NULL for a type that has no presets. On failure *out is left empty. */
typedef const cfg_keytable *(*abl_device_keys_fn)(const char *type);
abl_status device_table_load(const char *path, abl_device_keys_fn keys_of, abl_device_table *out,
                             abl_error *err);
void device_table_free(abl_device_table *t);

/* The preset named by entry's `device` key (a scalar), checked against source type `type`:
 * an unknown name -> "<file:line>: '<path>' = NAME is not a device preset in DEVICES; allowed
 * for type T: a, b, ..."; a preset of another type -> "... is a T2 preset; a T source takes
 * one of: ...". *out = NULL when entry has no device key. */
abl_status device_lookup(cfg_node *entry, const char *type, const abl_device_table *t,
                         const abl_device **out, abl_error *err);

/* Grafts dev's values into entry where the entry does not set the key (user wins), nor its
 * exclusive alternative (gauge / diameter_mm, power_W / schedule). A value
 * under a map whose selector (a preset `mode` or `type` key beside it) the entry sets to
 * another value is not applied: those keys belong to the preset's variant. applied[i] tells
 * which values were applied (dev->nvalues entries). */
abl_status device_apply(cfg_node *entry, const abl_device *dev, bool *applied, abl_error *err);

#endif
