/* Compiled loops over a batch's lines, where polars would need many passes (see kernels.py).
 *
 * Lines and fields are Arrow string views: 16 bytes each, int32 length then either the text
 * itself (12 bytes or fewer) or its first 4 bytes, a buffer index and an offset. `bufs` holds the
 * addresses of the data buffers (uint64). The views come from Arrow or polars and are trusted
 * (a length of 0 or more, a buffer index below the number of buffers). Nothing here allocates
 * or keeps a reference: the caller owns every array and keeps the buffers alive.
 */
#ifndef MMW_VIEWS_H
#define MMW_VIEWS_H

#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE /* memmem */
#include <Python.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#define NEEDS_GENERAL 1 /* scan_headers: a header the general framer must read */
#define MAY_REPEAT 2    /* scan_headers: some message may be a "last message repeated" notice */
#define POP_CASED 1     /* pop_logins: some user or host read has a capital or is not ASCII */
#define POP_MAPPED 2    /* pop_logins: some address read is "::ffff:" and IPv4 */

typedef struct {
    int32_t len, prefix, buf, offset;
} view_t;

static inline const uint8_t *text_of(const view_t *v, const uint64_t *bufs) {
    return v->len <= 12 ? (const uint8_t *)&v->prefix : (const uint8_t *)(uintptr_t)bufs[v->buf] + (uint32_t)v->offset;
}

/* Ask for the text of the line eight ahead: a batch's lines are read in order, but each kernel
 * touches only a few bytes of each, too few for the hardware to see the stride. */
static inline void prefetch_text(const view_t *views, Py_ssize_t j, Py_ssize_t n, const uint64_t *bufs) {
    if (j + 8 < n) __builtin_prefetch(text_of(&views[j + 8], bufs));
}

/* view `out` of the `len` bytes at `p`, which are at `offset` in buffer `buf` */
static inline void set_view(view_t *out, const uint8_t *p, int32_t len, int32_t buf, int32_t offset) {
    memset(out, 0, sizeof *out);
    out->len = len;
    if (len <= 12) {
        memcpy(&out->prefix, p, (size_t)len);
    } else {
        memcpy(&out->prefix, p, 4);
        out->buf = buf;
        out->offset = offset;
    }
}

/* view `out` of the `len` bytes at `p`, which lie in the text `line_text` of the view `line` */
static inline void put(view_t *out, const view_t *line, const uint8_t *p, const uint8_t *line_text, int32_t len) {
    set_view(out, p, len, line->buf, line->offset + (int32_t)(p - line_text));
}

static inline int starts(const uint8_t *p, const uint8_t *end, const char *pat) {
    size_t m = strlen(pat);
    return (size_t)(end - p) >= m && memcmp(p, pat, m) == 0;
}

/* the first occurrence of `pat` (memchr for its first byte, then a compare: faster than memmem
 * on the short lines and short keys these kernels look for) */
static inline const uint8_t *find(const uint8_t *p, const uint8_t *end, const char *pat) {
    size_t m = strlen(pat);
    if (m == 0) return p;
    if ((size_t)(end - p) < m) return NULL;
    const uint8_t *last = end - m;
    while (p <= last) {
        p = memchr(p, (uint8_t)pat[0], (size_t)(last - p) + 1);
        if (p == NULL) return NULL;
        if (memcmp(p + 1, pat + 1, m - 1) == 0) return p;
        p++;
    }
    return NULL;
}

static inline int is_alnum(uint8_t ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static inline int is_space(uint8_t ch) { /* ASCII whitespace, as \s reads it */
    return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

static inline int is_addr_char(uint8_t ch) { /* [0-9A-Fa-f:.] */
    return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F') || (ch >= 'a' && ch <= 'f') || ch == ':' || ch == '.';
}

/* A row kernel's arguments: args[0] the lines' views, args[1] their buffers' addresses, and from
 * args[first] on `nout` writable outputs, output i holding width[i] bytes per line. */
typedef struct {
    Py_buffer in[2], out[8];
    int nout, opened;
    Py_ssize_t n;
    const view_t *views;
    const uint64_t *bufs;
} rows_t;

/* 0, or -1 with an error set (then rows_close has released what was taken) */
int rows_open(rows_t *r, PyObject *args, int first, const int *width, int nout, const char *name);
void rows_close(rows_t *r);

#define ROWS_OUT(r, i) ((r)->out[i].buf)

PyObject *count_lines(PyObject *self, PyObject *args);
PyObject *line_views(PyObject *self, PyObject *args);
PyObject *scan_runs(PyObject *self, PyObject *args);
PyObject *scan_headers(PyObject *self, PyObject *args);
PyObject *all_ascii(PyObject *self, PyObject *args);
PyObject *utf8_lines(PyObject *self, PyObject *args);
PyObject *bsd_stamps(PyObject *self, PyObject *args);
PyObject *after_keys(PyObject *self, PyObject *args);
PyObject *pop_logins(PyObject *self, PyObject *args);
PyObject *sendmail_heads(PyObject *self, PyObject *args);
PyObject *postfix_heads(PyObject *self, PyObject *args);
PyObject *sendmail_from(PyObject *self, PyObject *args);
PyObject *sendmail_to(PyObject *self, PyObject *args);
PyObject *sendmail_reject(PyObject *self, PyObject *args);
PyObject *postfix_to(PyObject *self, PyObject *args);
PyObject *relay_fields(PyObject *self, PyObject *args);
PyObject *exim_heads(PyObject *self, PyObject *args);
PyObject *exim_fields(PyObject *self, PyObject *args);

#endif
