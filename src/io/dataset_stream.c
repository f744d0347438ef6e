/*
 * Inputs read from the dataset file on demand (data.load = stream): a
 * split's x stays in the file, and batches, evaluation chunks and the
 * fingerprint read the values they need when they need them. Not here: the
 * reader's checks of dtypes and shapes (dataset.c), done before a stream is
 * opened; labels and targets, which stay in memory.
 *
 * Two routes. A contiguous, unfiltered array of native float32 is read with
 * pread() at its byte offset in the file (H5Dget_offset): one system call
 * per batch row, no HDF5 in the loop. Any other array (chunked, compressed,
 * external, another byte order) is read through HDF5 as a hyperslab of whole
 * rows, converted to native float32 by the library. Both give the file's
 * numbers bit for bit, the same as data.load = memory.
 *
 * A read that fails mid-run (the file truncated or damaged while in use) is
 * TR_ERR_DATA naming the file and the array; agreeing on it across ranks is
 * the caller's part.
 */
#include "io/dataset_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/dataset_extra.h"
#include "io/h5util.h"

#define CHECK_BYTES (4u << 20) /* the opening pass reads at most this much at a time */

struct tr_x_file {
    char *path;
    int fd;    /* for pread */
    hid_t fid; /* the HDF5 route's file, opened for the first array that needs it; else -1 */
    int refs;
};

struct tr_x_stream {
    tr_x_file *f;
    char hpath[192];
    int64_t off; /* byte offset of the array in the file, or -1: the HDF5 route */
    hid_t did;   /* the HDF5 route's dataset, else -1 */
    int rank;
    hsize_t dims[4];
    int64_t n, ss; /* rows, values per row */
};

tr_status tr_x_file_open(tr_x_file **xf, const char *path) {
    tr_x_file *f;
    TR_ALLOC(f, 1, "input stream file");
    size_t len = strlen(path);
    f->path = tr_calloc(len + 1, 1);
    f->fd = f->path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    f->fid = -1;
    f->refs = 1;
    if (f->fd < 0) {
        int err = errno;
        int nomem = f->path == NULL;
        tr_free(f->path);
        tr_free(f);
        TR_CHECK(!nomem, TR_ERR_NOMEM, "out of memory (input stream file)");
        TR_RAISE(TR_ERR_DATA, "data: %s: cannot open: %s", path, strerror(err));
    }
    memcpy(f->path, path, len + 1);
    *xf = f;
    return TR_OK;
}

void tr_x_file_release(tr_x_file *xf) {
    if (!xf || --xf->refs > 0)
        return;
    close(xf->fd);
    if (xf->fid >= 0)
        H5Fclose(xf->fid);
    tr_free(xf->path);
    tr_free(xf);
}

void tr_x_stream_close(tr_x_stream *xs) {
    if (!xs)
        return;
    if (xs->did >= 0)
        H5Dclose(xs->did);
    tr_x_file_release(xs->f);
    tr_free(xs);
}

/* ---- the two routes ------------------------------------------------------------ */

/* count bytes at byte `at` of the file into out. */
static tr_status read_pread(const tr_x_stream *xs, void *out, size_t count, int64_t at) {
    unsigned char *p = out;
    while (count > 0) {
        ssize_t k = pread(xs->f->fd, p, count, (off_t)at);
        if (k < 0 && errno == EINTR)
            continue;
        TR_CHECK(k >= 0, TR_ERR_DATA, "data: %s: %s: read failed: %s", xs->f->path, xs->hpath,
                 strerror(errno));
        TR_CHECK(k > 0, TR_ERR_DATA,
                 "data: %s: %s: the file ends before the array does: it was truncated while "
                 "in use (data.load = stream reads it during the run)",
                 xs->f->path, xs->hpath);
        p += k;
        count -= (size_t)k;
        at += k;
    }
    return TR_OK;
}

/* Rows [r0, r0 + rows) of dataset d (xs's shape) into out through HDF5. */
static tr_status read_rows_h5(const tr_x_stream *xs, hid_t d, float *out, int64_t r0,
                              int64_t rows) {
    hsize_t start[4] = {(hsize_t)r0, 0, 0, 0}, count[4];
    count[0] = (hsize_t)rows;
    for (int i = 1; i < xs->rank; i++)
        count[i] = xs->dims[i];
    hsize_t m = (hsize_t)(rows * xs->ss);
    tr_h5_quiet q;
    tr_h5_quiet_begin(&q);
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, &m, NULL);
    herr_t r = fs >= 0 && ms >= 0 ? 0 : -1;
    if (r >= 0)
        r = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    if (r >= 0)
        r = H5Dread(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, out);
    if (fs >= 0)
        H5Sclose(fs);
    if (ms >= 0)
        H5Sclose(ms);
    tr_h5_quiet_end(&q);
    TR_CHECK(r >= 0, TR_ERR_DATA,
             "data: %s: %s: cannot read rows %lld to %lld (was the file changed or damaged "
             "while in use?)",
             xs->f->path, xs->hpath, (long long)r0, (long long)(r0 + rows - 1));
    return TR_OK;
}

tr_status tr_x_stream_read(const tr_x_stream *xs, float *out, size_t first, size_t count) {
    size_t ss = (size_t)xs->ss;
    TR_ASSERT(first + count <= (size_t)xs->n * ss);
    if (count == 0)
        return TR_OK;
    if (xs->off >= 0)
        return read_pread(xs, out, count * sizeof(float),
                          xs->off + (int64_t)(first * sizeof(float)));
    size_t r0 = first / ss, r1 = (first + count + ss - 1) / ss;
    if (first % ss == 0 && count % ss == 0)
        return read_rows_h5(xs, xs->did, out, (int64_t)r0, (int64_t)(r1 - r0));
    /* a piece of rows (the fingerprint's blocks): whole rows, then the piece */
    float *rows;
    TR_ALLOC(rows, (r1 - r0) * ss, "input rows");
    tr_status st = read_rows_h5(xs, xs->did, rows, (int64_t)r0, (int64_t)(r1 - r0));
    if (st == TR_OK)
        memcpy(out, rows + (first - r0 * ss), count * sizeof(float));
    tr_free(rows);
    return st;
}

/* ---- opening ----------------------------------------------------------------------- */

/* The byte offset of d's values if pread can read them as they are: one
 * contiguous block of native float32 inside the file, no filter, no
 * external file; else -1. */
static int64_t direct_offset(hid_t d) {
    hid_t dcpl = H5Dget_create_plist(d), t = H5Dget_type(d);
    int ok = dcpl >= 0 && t >= 0 && H5Pget_layout(dcpl) == H5D_CONTIGUOUS &&
             H5Pget_nfilters(dcpl) == 0 && H5Pget_external_count(dcpl) == 0 &&
             H5Tequal(t, H5T_NATIVE_FLOAT) > 0;
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (t >= 0)
        H5Tclose(t);
    haddr_t a = ok ? H5Dget_offset(d) : HADDR_UNDEF;
    return a == HADDR_UNDEF || a > (haddr_t)INT64_MAX ? -1 : (int64_t)a;
}

/* The pread route if the array lies within the file and its first row reads
 * the same through pread and through HDF5 (d); else the HDF5 route. */
static tr_status choose_route(tr_x_stream *xs, hid_t d) {
    struct stat st;
    TR_CHECK(fstat(xs->f->fd, &st) == 0, TR_ERR_DATA, "data: %s: cannot stat: %s", xs->f->path,
             strerror(errno));
    int64_t off = direct_offset(d), bytes = xs->n * xs->ss * (int64_t)sizeof(float);
    if (off >= 0 && xs->n > 0) {
        TR_CHECK(off + bytes <= (int64_t)st.st_size, TR_ERR_DATA,
                 "data: %s: %s ends past the end of the file (a truncated file?)", xs->f->path,
                 xs->hpath);
        float *a, *b;
        TR_ALLOC(a, 2 * (size_t)xs->ss, "input row");
        b = a + xs->ss;
        tr_status s = read_rows_h5(xs, d, a, 0, 1);
        if (s == TR_OK)
            s = read_pread(xs, b, (size_t)xs->ss * sizeof(float), off);
        int same = s == TR_OK && memcmp(a, b, (size_t)xs->ss * sizeof(float)) == 0;
        tr_free(a);
        TR_CALL(s);
        if (same) {
            xs->off = off;
            return TR_OK;
        }
    }
    tr_x_file *f = xs->f;
    if (f->fid < 0) {
        tr_h5_quiet q;
        tr_h5_quiet_begin(&q);
        f->fid = tr_h5_open_read(f->path, MPI_COMM_NULL);
        tr_h5_quiet_end(&q);
        TR_CHECK(f->fid >= 0, TR_ERR_DATA, "data: %s: cannot open as an HDF5 file", f->path);
    }
    xs->did = H5Dopen2(f->fid, xs->hpath, H5P_DEFAULT);
    TR_CHECK(xs->did >= 0, TR_ERR_DATA, "data: %s: cannot open %s", f->path, xs->hpath);
    return TR_OK;
}

/* Every value read once, a few MiB at a time: finite, and readable. */
static tr_status check_values(const tr_x_stream *xs) {
    size_t ss = (size_t)xs->ss;
    size_t per = CHECK_BYTES / (ss * sizeof(float));
    per = per < 1 ? 1 : per;
    per = per > (size_t)xs->n ? (size_t)xs->n : per;
    float *buf;
    TR_ALLOC(buf, per * ss, "input check");
    tr_status st = TR_OK;
    for (size_t r = 0; r < (size_t)xs->n && st == TR_OK; r += per) {
        size_t rows = (size_t)xs->n - r < per ? (size_t)xs->n - r : per;
        st = tr_x_stream_read(xs, buf, r * ss, rows * ss);
        if (st == TR_OK)
            st = tr_data_check_finite(xs->f->path, xs->hpath, buf, (int64_t)(rows * ss),
                                      (int64_t)(r * ss));
    }
    tr_free(buf);
    return st;
}

tr_status tr_x_stream_open(tr_x_stream **xs, tr_x_file *xf, hid_t fid, const char *hpath, int64_t n,
                           int64_t sample_size) {
    tr_x_stream *s;
    TR_ALLOC(s, 1, "input stream");
    s->f = xf;
    xf->refs++;
    s->off = -1;
    s->did = -1;
    s->n = n;
    s->ss = sample_size;
    snprintf(s->hpath, sizeof(s->hpath), "%s", hpath);
    *xs = s;
    hid_t d = H5Dopen2(fid, hpath, H5P_DEFAULT);
    TR_CHECK(d >= 0, TR_ERR_DATA, "data: %s: cannot open %s", xf->path, hpath);
    hid_t sp = H5Dget_space(d);
    s->rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    int ok = s->rank >= 1 && s->rank <= 4 && H5Sget_simple_extent_dims(sp, s->dims, NULL) >= 0;
    if (sp >= 0)
        H5Sclose(sp);
    tr_status st = ok ? choose_route(s, d) : TR_OK;
    H5Dclose(d);
    TR_CHECK(ok, TR_ERR_DATA, "data: %s: %s: cannot read its shape", xf->path, hpath);
    TR_CALL(st);
    return n > 0 ? check_values(s) : TR_OK;
}
