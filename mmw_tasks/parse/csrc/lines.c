/* Lines: splitting a buffer into views, syslog framing, ASCII checks and key=value fields. */
#include "views.h"

/* args[i] as an int, or -1 with an error set */
static int int_arg(PyObject *args, int i, int *out) {
    long v = PyLong_AsLong(PyTuple_GET_ITEM(args, i));
    if (v == -1 && PyErr_Occurred()) return -1;
    *out = (int)v;
    return 0;
}

/* count_lines(data) -> the number of "\n" in data */
PyObject *count_lines(PyObject *self, PyObject *args) {
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
 * newline or the CR of a CRLF; `views` holds count_lines(data) views. Bytes after the last "\n"
 * are not a line yet. data must be under 2 GiB (32-bit offsets). */
PyObject *line_views(PyObject *self, PyObject *args) {
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
            set_view(&views[n++], p, len, 0, (int32_t)(p - base));
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

/* scan_runs(views, bufs, len1, at2, len2, first) -> bool
 * first[j] = 1 when line j's key differs from line j-1's. The key is bytes [0, len1) and, when
 * len2 > 0, [at2, at2 + len2) (a shorter line has a shorter key). False when a line is 12 bytes
 * or shorter (no stamp fits) or a byte is not ASCII: the caller then takes its general path. */
PyObject *scan_runs(PyObject *self, PyObject *args) {
    static const int width[] = {1};
    rows_t r;
    int len1, at2, len2, ok = 1;
    (void)self;
    if (rows_open(&r, args, 5, width, 1, "scan_runs") < 0) return NULL;
    if (int_arg(args, 2, &len1) < 0 || int_arg(args, 3, &at2) < 0 || int_arg(args, 4, &len2) < 0) {
        rows_close(&r);
        return NULL;
    }
    uint8_t *first = ROWS_OUT(&r, 0);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < r.n; j++) {
        int32_t len = r.views[j].len;
        if (len <= 12) { ok = 0; break; }
        const uint8_t *t = text_of(&r.views[j], r.bufs);
        prefetch_text(r.views, j, r.n, r.bufs);
        uint8_t acc = 0;
        for (int32_t k = 0; k < len; k++) acc |= t[k];
        if (acc & 0x80) { ok = 0; break; }
        if (j == 0) { first[j] = 1; continue; }
        int32_t plen = r.views[j - 1].len;
        const uint8_t *pt = text_of(&r.views[j - 1], r.bufs);
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
    rows_close(&r);
    return PyBool_FromLong(ok);
}

/* scan_headers(views, bufs, at, host, host_ok, prog, prog_ok, msg, may_repeat) -> int
 * Splits "host tag: msg" after each line's `at`-byte stamp into views, by syslog._frame_fast's
 * rules (ASCII lines), and marks the messages that may be a "last message repeated" notice.
 * Returns NEEDS_GENERAL | MAY_REPEAT bits, or -1 when a line is shorter than its stamp. */
PyObject *scan_headers(PyObject *self, PyObject *args) {
    static const int width[] = {16, 1, 16, 1, 16, 1};
    rows_t r;
    int at;
    long flags = 0;
    (void)self;
    if (rows_open(&r, args, 3, width, 6, "scan_headers") < 0) return NULL;
    if (int_arg(args, 2, &at) < 0) {
        rows_close(&r);
        return NULL;
    }
    view_t *host = ROWS_OUT(&r, 0), *prog = ROWS_OUT(&r, 2), *msg = ROWS_OUT(&r, 4);
    uint8_t *host_ok = ROWS_OUT(&r, 1), *prog_ok = ROWS_OUT(&r, 3), *may = ROWS_OUT(&r, 5);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < r.n; j++) {
        const view_t *line = &r.views[j];
        int32_t len = line->len;
        if (len < at) { flags = -1; break; }
        const uint8_t *t = text_of(line, r.bufs), *rest = t + at, *end = t + len;
        prefetch_text(r.views, j, r.n, r.bufs);
        int32_t rlen = len - at, sp = -1, c = -1, b = -1; /* first " ", ": ", "[" in the rest */
        for (int32_t k = 0; k < rlen; k++) {
            uint8_t ch = rest[k];
            if (ch == ' ') { if (sp < 0) sp = k; }
            else if (ch == '[') { if (b < 0) b = k; }
            else if (ch == ':' && k + 1 < rlen && rest[k + 1] == ' ') { c = k; break; }
        }
        if (c == 0) sp = 1; /* ": " opens the rest: its space is the first */
        int has_tag = c > 0;
        if (has_tag && sp >= c) sp = -1;
        int32_t tag_start = sp < 0 ? 0 : sp + 1, m0;
        if (sp >= 0) {
            put(&host[j], line, rest, t, sp);
            host_ok[j] = 1;
            if (sp > 0 && rest[0] == '<') flags |= NEEDS_GENERAL;
            if (memchr(rest, '@', (size_t)sp)) flags |= NEEDS_GENERAL;
        } else {
            memset(&host[j], 0, sizeof(view_t));
        }
        if (has_tag) {
            int32_t tag_end = (b >= 0 && b < c && b >= tag_start) ? b : c;
            put(&prog[j], line, rest + tag_start, t, tag_end - tag_start);
            prog_ok[j] = 1;
            m0 = c + 2;
        } else {
            memset(&prog[j], 0, sizeof(view_t));
            m0 = sp >= 0 ? sp + 1 : 0;
        }
        const uint8_t *m = rest + (m0 < rlen ? m0 : rlen);
        put(&msg[j], line, m, t, (int32_t)(end - m));
        if (starts(m, end, "[ID ")) flags |= NEEDS_GENERAL; /* Solaris message ids */
        const uint8_t *h = (m < end && *m == ' ') ? m + 1 : m;
        may[j] = starts(h, end, "last message ") || starts(h, end, "above message ") || starts(h, end, "message repeated ");
        if (may[j]) flags |= MAY_REPEAT;
    }
    Py_END_ALLOW_THREADS
    rows_close(&r);
    return PyLong_FromLong(flags);
}

/* all_ascii(views, bufs) -> bool: no byte of any string is 0x80 or above */
PyObject *all_ascii(PyObject *self, PyObject *args) {
    rows_t r;
    uint8_t acc = 0;
    (void)self;
    if (rows_open(&r, args, 2, NULL, 0, "all_ascii") < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < r.n && !(acc & 0x80); j++) {
        const uint8_t *t = text_of(&r.views[j], r.bufs);
        prefetch_text(r.views, j, r.n, r.bufs);
        for (int32_t k = 0; k < r.views[j].len; k++) acc |= t[k];
    }
    Py_END_ALLOW_THREADS
    rows_close(&r);
    return PyBool_FromLong(!(acc & 0x80));
}

/* the length of the valid UTF-8 sequence at p (1-4), or 0 when the bytes there are not one
 * (Unicode's table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF) */
static int utf8_seq(const uint8_t *p, const uint8_t *end) {
    uint8_t c = p[0];
    if (c < 0x80) return 1;
    Py_ssize_t left = end - p;
    if (c >= 0xC2 && c <= 0xDF) return left >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || (p[2] & 0xC0) != 0x80) return 0;
        uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return p[1] >= lo && p[1] <= hi ? 4 : 0;
    }
    return 0;
}

/* utf8_lines(views, bufs, ok) -> int
 * ok[j] = 1 when string j is valid UTF-8; returns how many are not (logfiles.split_lines
 * repairs those, and only those, with replacement characters). */
PyObject *utf8_lines(PyObject *self, PyObject *args) {
    static const int width[] = {1};
    rows_t r;
    Py_ssize_t bad = 0;
    (void)self;
    if (rows_open(&r, args, 2, width, 1, "utf8_lines") < 0) return NULL;
    uint8_t *ok = ROWS_OUT(&r, 0);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < r.n; j++) {
        const uint8_t *t = text_of(&r.views[j], r.bufs), *end = t + r.views[j].len, *p = t;
        int good = 1;
        while (p < end && good) {
            if (*p < 0x80) { p++; continue; }
            int k = utf8_seq(p, end);
            good = k > 0;
            p += k;
        }
        ok[j] = (uint8_t)good;
        bad += !good;
    }
    Py_END_ALLOW_THREADS
    rows_close(&r);
    return PyLong_FromSsize_t(bad);
}

/* after_keys(views, bufs, keys, stop, out, ok) -> None
 * For each key (a tuple of 1-16 non-empty bytes) and each string: the text after the key's first
 * occurrence up to the next `stop` byte (or the end; stop < 0: the end), as views in
 * out[key][row]; ok = 0 where the key does not occur. out and ok are key-major. */
PyObject *after_keys(PyObject *self, PyObject *args) {
    rows_t r;
    int stop, width[2];
    (void)self;
    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) != 6 || !PyTuple_Check(PyTuple_GET_ITEM(args, 2))) {
        PyErr_SetString(PyExc_TypeError, "after_keys(views, bufs, keys, stop, out, ok)");
        return NULL;
    }
    PyObject *keys = PyTuple_GET_ITEM(args, 2);
    Py_ssize_t nk = PyTuple_GET_SIZE(keys);
    const char *key[16];
    Py_ssize_t klen[16];
    if (nk < 1 || nk > 16) {
        PyErr_SetString(PyExc_ValueError, "after_keys: 1 to 16 keys");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nk; i++) {
        PyObject *k = PyTuple_GET_ITEM(keys, i);
        if (!PyBytes_Check(k) || PyBytes_GET_SIZE(k) == 0) {
            PyErr_SetString(PyExc_ValueError, "after_keys: keys are non-empty bytes");
            return NULL;
        }
        key[i] = PyBytes_AS_STRING(k);
        klen[i] = PyBytes_GET_SIZE(k);
    }
    width[0] = (int)nk * 16;
    width[1] = (int)nk;
    if (rows_open(&r, args, 4, width, 2, "after_keys") < 0) return NULL;
    if (int_arg(args, 3, &stop) < 0) {
        rows_close(&r);
        return NULL;
    }
    view_t *out = ROWS_OUT(&r, 0);
    uint8_t *ok = ROWS_OUT(&r, 1);
    Py_ssize_t n = r.n;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < n; j++) {
        const view_t *line = &r.views[j];
        const uint8_t *t = text_of(line, r.bufs), *end = t + line->len;
        prefetch_text(r.views, j, r.n, r.bufs);
        for (Py_ssize_t i = 0; i < nk; i++) {
            view_t *o = &out[i * n + j];
            const uint8_t *p = line->len >= klen[i] ? memmem(t, (size_t)line->len, key[i], (size_t)klen[i]) : NULL;
            if (p == NULL) { memset(o, 0, 16); ok[i * n + j] = 0; continue; }
            p += klen[i];
            const uint8_t *e = stop >= 0 ? memchr(p, stop, (size_t)(end - p)) : NULL;
            put(o, line, p, t, (int32_t)((e ? e : end) - p));
            ok[i * n + j] = 1;
        }
    }
    Py_END_ALLOW_THREADS
    rows_close(&r);
    Py_RETURN_NONE;
}

/* bsd_stamps(views, bufs, month, dom, sod) -> bool
 * The fields of BSD stamps that begin each string (stamps._FIXED_BSD: "Mmm dd hh:mm:ss ", the
 * month's name in any case, the day with a space or a 0 before one digit): month 1-12, day
 * of the month (unchecked), and seconds of the day (-1: not a time of day, as strptime reads
 * %H:%M:%S). False as soon as a string is not of that form (parse_stamps then reads them its
 * general way). */
PyObject *bsd_stamps(PyObject *self, PyObject *args) {
    static const int width[] = {4, 4, 4};
    static const char names[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    rows_t r;
    int ok = 1;
    (void)self;
    if (rows_open(&r, args, 2, width, 3, "bsd_stamps") < 0) return NULL;
    int32_t *month = ROWS_OUT(&r, 0), *dom = ROWS_OUT(&r, 1), *sod = ROWS_OUT(&r, 2);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < r.n && ok; j++) {
        const view_t *line = &r.views[j];
        const uint8_t *t = text_of(line, r.bufs);
        prefetch_text(r.views, j, r.n, r.bufs);
        ok = line->len >= 16;
        for (int k = 0; k < 16 && ok; k++) {
            uint8_t ch = t[k];
            if (k < 3) ok = (ch | 0x20) >= 'a' && (ch | 0x20) <= 'z';
            else if (k == 3 || k == 6 || k == 15) ok = ch == ' ';
            else if (k == 9 || k == 12) ok = ch == ':';
            else if (k == 4) ok = ch == ' ' || (ch >= '0' && ch <= '9');
            else ok = ch >= '0' && ch <= '9';
        }
        if (!ok) break;
        month[j] = 0;
        for (int m = 0; m < 12 && !month[j]; m++)
            if ((t[0] | 0x20) == names[3 * m] && (t[1] | 0x20) == names[3 * m + 1] && (t[2] | 0x20) == names[3 * m + 2])
                month[j] = m + 1;
        ok = month[j] != 0;
        dom[j] = (t[4] == ' ' ? 0 : (t[4] - '0') * 10) + (t[5] - '0');
        int hh = (t[7] - '0') * 10 + (t[8] - '0'), mm = (t[10] - '0') * 10 + (t[11] - '0');
        int ss = (t[13] - '0') * 10 + (t[14] - '0'); /* 60: a leap second, read as the next minute's 0 */
        sod[j] = hh <= 23 && mm <= 59 && ss <= 60 ? hh * 3600 + mm * 60 + ss : -1;
    }
    Py_END_ALLOW_THREADS
    rows_close(&r);
    return PyBool_FromLong(ok);
}
