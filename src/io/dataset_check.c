/*
 * tr_dataset_check and tr_dataset_check_all (see taskrel/dataset.h): the
 * structure of a dataset file read in a forked child before the loader reads
 * it in the process. The child does the header's reads (root and task
 * attributes, every split's datatype and shape: tr_dataset_load_header) and
 * walks the chunk index of every array the loader will read, without reading
 * the examples. The HDF5 library crashes or allocates without bound on some
 * damaged object headers and attribute messages; in the child that costs a
 * verdict ("damaged HDF5 file: the HDF5 library crashed reading it") instead
 * of the run. The child's memory is capped, so that a size a damaged header
 * states fails HDF5's allocation there (an error) instead of being taken.
 *
 * The child is a copy of the caller made just before the caller's own reads,
 * and makes the same reads, so a read that would crash the caller crashes the
 * child first. An over-read that stays inside mapped memory crashes neither
 * and is not seen here (it is HDF5's bug; the loader then fails, or not, on
 * what it read). One rank checks for all, its verdict broadcast: every rank
 * reads the same bytes at the same point of the same program.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "child.h"
#include "h5util.h"
#include "taskrel/dataset.h"

/* Memory the check may take beyond the process's: the header of a sound file
 * needs a few MB (HDF5's metadata cache); a damaged object header or
 * superblock can state gigabytes, which HDF5 then allocates and touches. */
#define CHECK_MEMORY ((size_t)512 << 20)

typedef struct {
    int status; /* tr_status */
    char msg[512];
} check_msg;

/* Walk the chunk index of dataset path (a chunked one), the metadata a read
 * goes through that the header does not open. */
static tr_status walk_index(hid_t fid, const char *file, const char *path) {
    hid_t d = H5Dopen2(fid, path, H5P_DEFAULT);
    TR_CHECK(d >= 0, TR_ERR_DATA, "data: %s: %s is not a dataset", file, path);
    hid_t dcpl = H5Dget_create_plist(d);
    H5D_layout_t lay = dcpl >= 0 ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
    hsize_t n = 0;
    /* the dataset's own dataspace: HDF5 1.10 refuses H5S_ALL here */
    hid_t sp = lay == H5D_CHUNKED ? H5Dget_space(d) : H5I_INVALID_HID;
    int ok = lay != H5D_LAYOUT_ERROR &&
             (lay != H5D_CHUNKED || (sp >= 0 && H5Dget_num_chunks(d, sp, &n) >= 0));
    if (sp >= 0)
        H5Sclose(sp);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    H5Dclose(d);
    TR_CHECK(ok, TR_ERR_DATA, "data: %s: %s: cannot read its layout or chunk index (corrupt file?)",
             file, path);
    return TR_OK;
}

static tr_status walk_indexes(const tr_dataset *ds, const char *file) {
    hid_t fid = tr_h5_open_read(file, MPI_COMM_NULL);
    TR_CHECK(fid >= 0, TR_ERR_DATA, "data: %s: cannot open as an HDF5 file", file);
    tr_status st = TR_OK;
    int per = ds->setting == TR_SETTING_MULTI_INPUT ? ds->T : 1;
    for (int s = 0; s < TR_SPLIT_COUNT && st == TR_OK; s++)
        for (int t = 0; ds->has_split[s] && t < per && st == TR_OK; t++)
            for (int xy = 0; xy < 2 && st == TR_OK; xy++) {
                char path[192];
                if (ds->setting == TR_SETTING_MULTI_INPUT)
                    snprintf(path, sizeof(path), "/tasks/%s/%s/%c", ds->tasks[t].name,
                             tr_split_name((tr_split)s), "xy"[xy]);
                else
                    snprintf(path, sizeof(path), "/%s/%c", tr_split_name((tr_split)s), "xy"[xy]);
                st = walk_index(fid, file, path);
            }
    H5Fclose(fid);
    return st;
}

/* The child's work (also the in-process check when no child can be started). */
static void check_in_child(void *arg, void *out, size_t outn) {
    const char *path = arg;
    check_msg *m = out;
    memset(m, 0, outn);
    tr_dataset ds;
    tr_status st = tr_dataset_load_header(&ds, path); /* sigma3 is read whole: T x T */
    if (st == TR_OK) {
        tr_h5_quiet q;
        tr_h5_quiet_begin(&q);
        st = walk_indexes(&ds, path);
        tr_h5_quiet_end(&q);
    }
    tr_dataset_free(&ds);
    m->status = (int)st;
    if (st != TR_OK)
        snprintf(m->msg, sizeof(m->msg), "%s", tr_error_message());
    tr_error_clear();
}

/* The status and message a check delivered, raised here. */
static tr_status verdict(check_msg *m) {
    m->msg[sizeof(m->msg) - 1] = '\0';
    if (m->status == TR_OK)
        return TR_OK;
    tr_status st =
        m->status > TR_OK && m->status < TR_STATUS_COUNT ? (tr_status)m->status : TR_ERR_DATA;
    return tr_error_set(st, __FILE__, __LINE__, __func__, "%s", m->msg);
}

tr_status tr_dataset_check(const char *path) {
    struct stat sb;
    TR_CHECK(stat(path, &sb) == 0, TR_ERR_DATA, "dataset file not found: %s", path);
    check_msg m;
    int detail = 0;
    /* the header and the indexes are small; a loop in the library is not */
    double timeout = 60.0 + (double)sb.st_size / 200e6;
    tr_child_outcome oc =
        tr_io_in_child(check_in_child, (void *)path, &m, sizeof(m), timeout, CHECK_MEMORY, &detail);
    switch (oc) {
    case TR_CHILD_DONE:
        break;
    case TR_CHILD_SIGNAL:
        TR_RAISE(TR_ERR_DATA,
                 "data: %s: damaged HDF5 file: the HDF5 library crashed reading it "
                 "(signal %d)",
                 path, detail);
    case TR_CHILD_EXIT:
        TR_RAISE(TR_ERR_DATA,
                 "data: %s: damaged HDF5 file: the HDF5 library crashed reading it "
                 "(exit code %d)",
                 path, detail);
    case TR_CHILD_TIMEOUT:
        TR_RAISE(TR_ERR_DATA,
                 "data: %s: damaged HDF5 file: the HDF5 library did not finish "
                 "reading its structure within %.0f s",
                 path, timeout);
    }
    return verdict(&m);
}

tr_status tr_dataset_check_all(const char *path, MPI_Comm world) {
    int rank = 0;
    MPI_Comm_rank(world, &rank);
    check_msg m;
    memset(&m, 0, sizeof(m));
    if (rank == 0) {
        m.status = (int)tr_dataset_check(path);
        if (m.status != TR_OK)
            snprintf(m.msg, sizeof(m.msg), "%s", tr_error_message());
    }
    TR_CHECK(MPI_Bcast(&m, (int)sizeof(m), MPI_BYTE, 0, world) == MPI_SUCCESS, TR_ERR_MPI,
             "data: %s: could not share the verdict of the file's check", path);
    return verdict(&m);
}
