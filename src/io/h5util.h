/*
 * The HDF5 layer of src/io, private to it: the one file-access setup, the
 * attribute helpers, the parameter-arena writer and reader, and the quiet
 * error stack. Nothing outside src/io includes <hdf5.h>; public io headers
 * speak in paths and structs.
 *
 * In a parallel file, file creation, dataset creation and attribute writes are
 * collective: every rank calls them with the same values.
 */
#ifndef TASKREL_IO_H5UTIL_H
#define TASKREL_IO_H5UTIL_H

#include <hdf5.h>

#include "taskrel/core.h"
#include "taskrel/comm.h"
#include "taskrel/params.h"
#include "taskrel/relations.h"
#include "taskrel/weights.h"

/* ---- files -------------------------------------------------------------------- */

/* File access list of every taskrel file: MPI-IO on comm (MPI_COMM_NULL: the
 * default serial driver) and the 1.8+ object format, whose superblock and
 * object headers (attributes included) carry checksums. Close with H5Pclose. */
hid_t tr_h5_fapl(MPI_Comm comm);

/* Open path read-only with tr_h5_fapl(comm) (collective if comm is not
 * MPI_COMM_NULL). <0 on failure. */
hid_t tr_h5_open_read(const char *path, MPI_Comm comm);

/* Collective transfer list (H5FD_MPIO_COLLECTIVE); close with H5Pclose. */
hid_t tr_h5_dxpl_collective(void);

/* HDF5's automatic error printing off while taskrel reports errors itself. */
typedef struct {
    H5E_auto2_t fn;
    void *data;
} tr_h5_quiet;
void tr_h5_quiet_begin(tr_h5_quiet *q);
void tr_h5_quiet_end(const tr_h5_quiet *q);

/* ---- attributes --------------------------------------------------------------- */

/* Scalar attributes; an existing attribute of the same name is replaced. */
tr_status tr_h5_attr_write_int(hid_t loc, const char *name, long long v); /* native int64 */
tr_status tr_h5_attr_write_int32(hid_t loc, const char *name, int v);     /* int32 LE */
tr_status tr_h5_attr_write_u64(hid_t loc, const char *name, uint64_t v);  /* uint64 LE */
tr_status tr_h5_attr_write_double(hid_t loc, const char *name, double v);
/* prov's run_id and data_fingerprint as string attributes of loc (NULL or
 * empty fields: none). Defined in weights.c. */
tr_status tr_provenance_write_h5(hid_t loc, const tr_provenance *prov);
tr_status tr_h5_attr_write_str(hid_t loc, const char *name, const char *v);

/* Readers: *found = 0 (and TR_OK) if the attribute is absent. A present
 * attribute that is not one value of the right class is TR_ERR_DATA. Strings
 * may be fixed or variable length, ASCII or UTF-8 (h5py's default), and are
 * cut to cap - 1 bytes (always terminated). */
tr_status tr_h5_attr_read_str(hid_t loc, const char *name, char *buf, size_t cap, int *found);
tr_status tr_h5_attr_read_int(hid_t loc, const char *name, long long *v, int *found);
tr_status tr_h5_attr_read_double(hid_t loc, const char *name, double *v, int *found);
/* A string attribute of any length, malloc'd into *text (free() it); NULL and
 * *found = 0 if absent. */
tr_status tr_h5_attr_read_text(hid_t loc, const char *name, char **text, int *found);

/* ---- datasets ----------------------------------------------------------------- */

/* A chunked, fletcher32-checksummed dataset (intermediate groups created);
 * chunk = one task's slice (task_axis) or the whole array. <0 on failure. */
hid_t tr_h5_dataset_create(hid_t loc, const char *name, hid_t type, int ndim, const hsize_t *dims,
                           int task_axis);

/* Collective transfers HDF5 reports as done collectively or not. */
typedef struct {
    int64_t collective, independent;
    char cause[128]; /* first H5Pget_mpio_no_collective_cause, if any */
} tr_h5_io;

/* Count one finished collective transfer of dxpl in io (NULL: nothing). */
void tr_h5_note_io(hid_t dxpl, tr_h5_io *io);

/* One tensor arena `data` laid out like p, as one dataset per tensor
 * <group>/<name> of the tensor's GLOBAL shape (float32). Write: shared tensors
 * by rank 0, task rows by the ranks of replica 0; every other rank joins with
 * an empty selection. Read: every rank reads the slices it holds; a missing
 * dataset or one of another shape is TR_ERR_DATA naming `what` (the file) and
 * the dataset. Collective over the file's communicator; io may be NULL. */
tr_status tr_h5_arena_write(hid_t file, const char *group, const tr_params *p, const float *data,
                            const tr_grid *g, hid_t dxpl, const char *what, tr_h5_io *io);
tr_status tr_h5_arena_read(hid_t file, const char *group, const tr_params *p, float *data,
                           hid_t dxpl, const char *what, tr_h5_io *io);

/* File and memory selections of this rank's part of tensor t: all of it
 * (shared tensor), its task rows [t0, t0+tn) (task tensor), or nothing
 * (active = 0; the rank still joins the collective call). *mspace is created
 * here; the caller closes it. */
tr_status tr_h5_select_part(hid_t fspace, hid_t *mspace, const tr_tensor *t, int active);

/* Write group /relations under loc (see taskrel/relations.h): collective in a
 * parallel file, every rank with the same list; only writer != 0 writes data. */
tr_status tr_relations_write_h5(hid_t loc, const tr_relations *r, int writer);

#endif
