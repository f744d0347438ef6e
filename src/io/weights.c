/*
 * Collective HDF5 weights files (see taskrel/weights.h). Not here: optimizer
 * state, data cursors and the rest of a resumable checkpoint.
 */
#include "taskrel/weights.h"

#include <stdlib.h>
#include <unistd.h>

#include "h5util.h"

tr_status tr_provenance_write_h5(hid_t loc, const tr_provenance *prov) {
    if (!prov)
        return TR_OK;
    if (prov->run_id[0])
        TR_CALL(tr_h5_attr_write_str(loc, "run_id", prov->run_id));
    if (prov->data_fingerprint[0])
        TR_CALL(tr_h5_attr_write_str(loc, "data_fingerprint", prov->data_fingerprint));
    const struct {
        const char *name, *value;
    } more[] = {{"taskrel_version", prov->version},   {"git_revision", prov->git_revision},
                {"command_line", prov->command_line}, {"hosts", prov->hosts},
                {"slurm_job_id", prov->slurm_job_id}, {"blas", prov->blas}};
    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
        if (more[i].value[0])
            TR_CALL(tr_h5_attr_write_str(loc, more[i].name, more[i].value));
    return TR_OK;
}

static tr_status save_body(hid_t file, const char *path, const tr_params *params,
                           const tr_params *buffers, const tr_grid *g, const tr_config *cfg,
                           const tr_provenance *prov) {
    TR_CALL(tr_h5_attr_write_str(file, "format", "taskrel-weights"));
    TR_CALL(tr_h5_attr_write_int(file, "version", TR_WEIGHTS_VERSION));
    TR_CALL(tr_h5_attr_write_int(file, "tasks", g->T));
    TR_CALL(tr_h5_attr_write_int(file, "world_size", g->size));
    TR_CALL(tr_h5_attr_write_int(file, "replicas", g->R));
    TR_CALL(tr_h5_attr_write_int(file, "shards", g->S));
    if (cfg) {
        char *text = NULL;
        TR_CALL(tr_config_text(cfg, &text));
        tr_status st = tr_h5_attr_write_str(file, "config", text);
        free(text);
        TR_CALL(st);
    }
    TR_CALL(tr_provenance_write_h5(file, prov));
    hid_t dxpl = tr_h5_dxpl_collective();
    TR_H5(dxpl);
    char what[TR_PATH_LEN + 32];
    snprintf(what, sizeof(what), "weights file %s", path);
    tr_status st = tr_h5_arena_write(file, "/params", params, params->data, g, dxpl, what, NULL);
    if (st == TR_OK && buffers && buffers->n > 0)
        st = tr_h5_arena_write(file, "/buffers", buffers, buffers->data, g, dxpl, what, NULL);
    H5Pclose(dxpl);
    return st;
}

tr_status tr_weights_save(const char *path, const tr_params *params, const tr_params *buffers,
                          const tr_grid *g, const tr_config *cfg, const tr_provenance *prov) {
    hid_t fapl = tr_h5_fapl(g->world);
    TR_H5(fapl);
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    TR_CHECK(file >= 0, TR_ERR_IO, "cannot create weights file %s", path);
    tr_status st = save_body(file, path, params, buffers, g, cfg, prov);
    if (H5Fclose(file) < 0 && st == TR_OK)
        st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "cannot close %s", path);
    return st;
}

static tr_status load_body(hid_t file, const char *path, tr_params *params, tr_params *buffers) {
    hid_t dxpl = tr_h5_dxpl_collective();
    TR_H5(dxpl);
    char what[TR_PATH_LEN + 32];
    snprintf(what, sizeof(what), "weights file %s", path);
    tr_status st = tr_h5_arena_read(file, "/params", params, params->data, dxpl, what, NULL);
    if (st == TR_OK && buffers && buffers->n > 0)
        st = tr_h5_arena_read(file, "/buffers", buffers, buffers->data, dxpl, what, NULL);
    H5Pclose(dxpl);
    return st;
}

tr_status tr_weights_load(const char *path, tr_params *params, tr_params *buffers,
                          const tr_grid *g) {
    TR_CHECK(access(path, R_OK) == 0, TR_ERR_DATA, "weights file not found: %s", path);
    tr_h5_quiet q;
    tr_h5_quiet_begin(&q);
    hid_t file = tr_h5_open_read(path, g->world);
    tr_status st = TR_OK;
    if (file < 0)
        st = tr_error_set(TR_ERR_DATA, __FILE__, __LINE__, __func__,
                          "%s is not a readable HDF5 weights file", path);
    else
        st = load_body(file, path, params, buffers);
    if (file >= 0)
        H5Fclose(file);
    tr_h5_quiet_end(&q);
    return st;
}
