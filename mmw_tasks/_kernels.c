/* Compiled loops over a batch's lines, where polars would need many passes (see kernels.py).
 *
 * Lines and fields are Arrow string views: 16 bytes each, int32 length then either the text
 * itself (12 bytes or fewer) or its first 4 bytes, a buffer index and an offset. `bufs` holds the
 * addresses of the data buffers (uint64). Nothing here allocates or keeps a reference: the caller
 * owns every array and keeps the buffers alive.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define NEEDS_GENERAL 1 /* a header the general framer must read */
#define MAY_REPEAT 2    /* some message may be a "last message repeated" notice */

typedef struct {
    int32_t len, prefix, buf, offset;
} view_t;

static inline const uint8_t *text_of(const view_t *v, const uint64_t *bufs) {
    return v->len <= 12 ? (const uint8_t *)&v->prefix : (const uint8_t *)(uintptr_t)bufs[v->buf] + (uint32_t)v->offset;
}

/* view `out` of the `len` bytes at `p` (which lie in buffer `buf` of the line `line`) */
static inline void put(view_t *out, const view_t *line, const uint8_t *p, const uint8_t *line_text, int32_t len) {
    memset(out, 0, sizeof *out);
    out->len = len;
    if (len <= 12) {
        memcpy(&out->prefix, p, (size_t)len);
    } else {
        memcpy(&out->prefix, p, 4);
        out->buf = line->buf;
        out->offset = line->offset + (int32_t)(p - line_text);
    }
}

static inline int starts(const uint8_t *p, const uint8_t *end, const char *pat) {
    size_t m = strlen(pat);
    return (size_t)(end - p) >= m && memcmp(p, pat, m) == 0;
}

/* the number of views in `b`, or -1 (with an error set) */
static Py_ssize_t n_views(const Py_buffer *b) {
    if (b->len % 16) {
        PyErr_SetString(PyExc_ValueError, "views: a multiple of 16 bytes expected");
        return -1;
    }
    return b->len / 16;
}

/* scan_runs(views, bufs, len1, at2, len2, first) -> bool
 * first[j] = 1 when line j's key differs from line j-1's. The key is bytes [0, len1) and, when
 * len2 > 0, [at2, at2 + len2) (a shorter line has a shorter key). False when a line is 12 bytes
 * or shorter (no stamp fits) or a byte is not ASCII: the caller then takes its general path. */
static PyObject *scan_runs(PyObject *self, PyObject *args) {
    Py_buffer vb, bb, fb;
    int len1, at2, len2;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*iiiw*", &vb, &bb, &len1, &at2, &len2, &fb)) return NULL;
    Py_ssize_t n = n_views(&vb);
    int ok = 1;
    if (n < 0 || fb.len < n) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "first: one byte per line expected");
        PyBuffer_Release(&vb); PyBuffer_Release(&bb); PyBuffer_Release(&fb);
        return NULL;
    }
    const view_t *views = vb.buf;
    const uint64_t *bufs = bb.buf;
    uint8_t *first = fb.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < n && ok; j++) {
        int32_t len = views[j].len;
        if (len <= 12) { ok = 0; break; }
        const uint8_t *t = text_of(&views[j], bufs);
        uint8_t acc = 0;
        for (int32_t k = 0; k < len; k++) acc |= t[k];
        if (acc & 0x80) { ok = 0; break; }
        if (j == 0) { first[j] = 1; continue; }
        int32_t plen = views[j - 1].len;
        const uint8_t *pt = text_of(&views[j - 1], bufs);
        int32_t k1 = len < len1 ? len : len1, pk1 = plen < len1 ? plen : len1;
        int same = k1 == pk1 && memcmp(t, pt, (size_t)k1) == 0;
        if (same && len2 > 0) {
            int32_t e = at2 + len2;
            int32_t k2 = (len < e ? len : e) - at2, pk2 = (plen < e ? plen : e) - at2;
            k2 = k2 < 0 ? 0 : k2;
            pk2 = pk2 < 0 ? 0 : pk2;
            same = k2 == pk2 && memcmp(t + at2, pt + at2, (size_t)k2) == 0;
        }
        first[j] = !same;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&vb); PyBuffer_Release(&bb); PyBuffer_Release(&fb);
    return PyBool_FromLong(ok);
}

/* scan_headers(views, bufs, at, host, host_ok, prog, prog_ok, msg) -> int
 * Splits "host tag: msg" after each line's `at`-byte stamp into views, by syslog._frame_fast's
 * rules (ASCII lines). Returns NEEDS_GENERAL | MAY_REPEAT bits, or -1 when a line is shorter
 * than its stamp. */
static PyObject *scan_headers(PyObject *self, PyObject *args) {
    Py_buffer vb, bb, hb, hok, pb, pok, mb;
    int at;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*iw*w*w*w*w*", &vb, &bb, &at, &hb, &hok, &pb, &pok, &mb)) return NULL;
    Py_ssize_t n = n_views(&vb);
    long flags = 0;
    if (n < 0 || hb.len < n * 16 || pb.len < n * 16 || mb.len < n * 16 || hok.len < n
        || pok.len < n) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "scan_headers: output arrays too short");
        flags = -2;
    }
    if (flags == 0) {
        const view_t *views = vb.buf;
        const uint64_t *bufs = bb.buf;
        view_t *host = hb.buf, *prog = pb.buf, *msg = mb.buf;
        uint8_t *host_ok = hok.buf, *prog_ok = pok.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t j = 0; j < n; j++) {
            const view_t *line = &views[j];
            int32_t len = line->len;
            if (len < at) { flags = -1; break; }
            const uint8_t *t = text_of(line, bufs), *r = t + at, *end = t + len;
            int32_t rlen = len - at, sp = -1, c = -1, b = -1;  /* first " ", ": ", "[" in the rest */
            for (int32_t k = 0; k < rlen; k++) {
                uint8_t ch = r[k];
                if (ch == ' ') { if (sp < 0) sp = k; }
                else if (ch == '[') { if (b < 0) b = k; }
                else if (ch == ':' && k + 1 < rlen && r[k + 1] == ' ') { c = k; break; }
            }
            if (c == 0) sp = 1;  /* ": " opens the rest: its space is the first */
            int has_tag = c > 0;
            if (has_tag && sp >= c) sp = -1;
            int32_t tag_start = sp < 0 ? 0 : sp + 1, m0;
            if (sp >= 0) {
                put(&host[j], line, r, t, sp);
                host_ok[j] = 1;
                if (sp > 0 && r[0] == '<') flags |= NEEDS_GENERAL;
                if (memchr(r, '@', (size_t)sp)) flags |= NEEDS_GENERAL;
            } else {
                memset(&host[j], 0, sizeof(view_t));
            }
            if (has_tag) {
                int32_t tag_end = (b >= 0 && b < c && b >= tag_start) ? b : c;
                put(&prog[j], line, r + tag_start, t, tag_end - tag_start);
                prog_ok[j] = 1;
                m0 = c + 2;
            } else {
                memset(&prog[j], 0, sizeof(view_t));
                m0 = sp >= 0 ? sp + 1 : 0;
            }
            const uint8_t *m = r + (m0 < rlen ? m0 : rlen);
            put(&msg[j], line, m, t, (int32_t)(end - m));
            if (starts(m, end, "[ID ")) flags |= NEEDS_GENERAL;  /* Solaris message ids */
            const uint8_t *h = (m < end && *m == ' ') ? m + 1 : m;
            if (starts(h, end, "last message ") || starts(h, end, "above message ")
                || starts(h, end, "message repeated "))
                flags |= MAY_REPEAT;
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&vb); PyBuffer_Release(&bb); PyBuffer_Release(&hb); PyBuffer_Release(&hok);
    PyBuffer_Release(&pb); PyBuffer_Release(&pok); PyBuffer_Release(&mb);
    if (flags == -2) return NULL;
    return PyLong_FromLong(flags);
}

/* count_lines(data) -> the number of "\n" in data */
static PyObject *count_lines(PyObject *self, PyObject *args) {
    Py_buffer db;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*", &db)) return NULL;
    Py_ssize_t n = 0;
    Py_BEGIN_ALLOW_THREADS
    const char *p = db.buf, *end = p + db.len;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&db);
    return PyLong_FromSsize_t(n);
}

/* line_views(data, views) -> n: a view (buffer 0) of each "\n"-ended line of data, without its
 * newline or the CR of a CRLF; `views` holds count_lines(data) views. Lines after the last "\n"
 * are not lines yet. data must be under 2 GiB (32-bit offsets). */
static PyObject *line_views(PyObject *self, PyObject *args) {
    Py_buffer db, vb;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*", &db, &vb)) return NULL;
    Py_ssize_t cap = vb.len / 16, n = 0;
    int too_big = db.len > INT32_MAX;
    if (!too_big) {
        view_t *views = vb.buf;
        Py_BEGIN_ALLOW_THREADS
        const uint8_t *base = db.buf, *p = base, *end = base + db.len, *nl;
        while (n < cap && p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            int32_t len = (int32_t)(nl - p);
            if (len > 0 && nl[-1] == '\r') len--;
            view_t *v = &views[n++];
            memset(v, 0, sizeof *v);
            v->len = len;
            if (len <= 12) {
                memcpy(&v->prefix, p, (size_t)len);
            } else {
                memcpy(&v->prefix, p, 4);
                v->offset = (int32_t)(p - base);
            }
            p = nl + 1;
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&db);
    PyBuffer_Release(&vb);
    if (too_big) {
        PyErr_SetString(PyExc_ValueError, "line_views: a buffer of 2 GiB or more");
        return NULL;
    }
    return PyLong_FromSsize_t(n);
}

static PyMethodDef methods[] = {
    {"count_lines", count_lines, METH_VARARGS, "The number of newlines in a buffer."},
    {"line_views", line_views, METH_VARARGS, "Arrow views of a buffer's lines."},
    {"scan_runs", scan_runs, METH_VARARGS, "Mark the lines that begin a run of equal stamp keys."},
    {"scan_headers", scan_headers, METH_VARARGS, "Split syslog headers into host, tag and message views."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", NULL, -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) {
    PyObject *m = PyModule_Create(&module);
    if (m) {
        PyModule_AddIntConstant(m, "NEEDS_GENERAL", NEEDS_GENERAL);
        PyModule_AddIntConstant(m, "MAY_REPEAT", MAY_REPEAT);
    }
    return m;
}
