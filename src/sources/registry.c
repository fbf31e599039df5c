/* registry.c - the source types a scenario may name, and source construction by type.
 * A modality adds one line to `registry` (and its file beside this one). */
#include <stdio.h>
#include <string.h>

#include "ablasim/sim.h"
#include "ablasim/source.h"

extern const abl_source_type_info mwa_source_type;
extern const abl_source_type_info cryo_source_type;
extern const abl_source_type_info rfa_source_type;
extern const abl_source_type_info vessel_source_type;
static const abl_source_type_info *const registry[] = {
    &mwa_source_type,
    &cryo_source_type,
    &rfa_source_type,
    &vessel_source_type,
    NULL /* modalities: &rfa_source_type, &mwa_source_type, &cryo_source_type, ... */
};

const abl_source_type_info *source_type_find(const char *type)
{
    for (size_t i = 0; registry[i]; i++)
        if (!strcmp(registry[i]->type, type)) return registry[i];
    return NULL;
}

void source_type_names(char *buf, size_t len)
{
    size_t pos = (size_t)snprintf(buf, len, "volumetric, fixed_temperature");
    for (size_t i = 0; registry[i] && pos < len; i++)
        pos += (size_t)snprintf(buf + pos, len - pos, ", %s", registry[i]->type);
}

abl_status source_create(const abl_source_cfg *cfg, const abl_sim *sim, abl_source **out,
                         abl_error *err)
{
    if (cfg->type == SRC_MODALITY) return cfg->modality->create(cfg, sim, out, err);
    return basic_source_create(cfg, sim, out, err);
}

void source_destroy(abl_source *s)
{
    if (s) s->ops->destroy(s);
}
