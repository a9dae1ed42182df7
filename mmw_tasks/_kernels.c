/* Compiled loops over a batch's lines, where polars would need many passes (see kernels.py).
 *
 * Lines and fields are Arrow string views: 16 bytes each, int32 length then either the text
 * itself (12 bytes or fewer) or its first 4 bytes, a buffer index and an offset. `bufs` holds the
 * addresses of the data buffers (uint64). Nothing here allocates or keeps a reference: the caller
 * owns every array and keeps the buffers alive.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE /* memmem */
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

static const uint8_t *find(const uint8_t *p, const uint8_t *end, const char *pat) {
    size_t m = strlen(pat);
    if ((size_t)(end - p) < m) return NULL;
    return memmem(p, (size_t)(end - p), pat, m);
}

static inline int is_addr_char(uint8_t ch) {  /* [0-9A-Fa-f:.] */
    return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F') || (ch >= 'a' && ch <= 'f') || ch == ':' || ch == '.';
}

/* pop_logins(views, bufs, kind, f1, ok1, f2, ok2, f3, ok3) -> None
 * Each message's login kind (parse_pop: 1 qpopper, 2 Dovecot, 3 Courier, 4 UW, 0 none) and, for
 * the common qpopper and Dovecot forms (parse_pop's _QPOPPER_TAIL and _DOVECOT_HEAD), their
 * fields: qpopper user, host, address; Dovecot service, user, address (ok = 0: not that form). */
static PyObject *pop_logins(PyObject *self, PyObject *args) {
    Py_buffer vb, bb, kb, b1, k1, b2, k2, b3, k3;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*w*w*w*w*w*w*w*", &vb, &bb, &kb, &b1, &k1, &b2, &k2, &b3, &k3)) return NULL;
    Py_ssize_t n = n_views(&vb);
    int bad = n < 0 || kb.len < n || k1.len < n || k2.len < n || k3.len < n || b1.len < n * 16 || b2.len < n * 16
              || b3.len < n * 16;
    if (!bad) {
        const view_t *views = vb.buf;
        const uint64_t *bufs = bb.buf;
        uint8_t *kind = kb.buf, *ok1 = k1.buf, *ok2 = k2.buf, *ok3 = k3.buf;
        view_t *f1 = b1.buf, *f2 = b2.buf, *f3 = b3.buf;
        static const char *services[] = {"pop3", "imap", "managesieve", "submission"};
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t j = 0; j < n; j++) {
            const view_t *line = &views[j];
            const uint8_t *t = text_of(line, bufs), *end = t + line->len, *p, *q;
            memset(&f1[j], 0, 16); memset(&f2[j], 0, 16); memset(&f3[j], 0, 16);
            ok1[j] = ok2[j] = ok3[j] = 0;
            if ((p = find(t, end, "POP login by user")) != NULL) {
                kind[j] = 1;
                if ((p = find(t, end, "POP login by user \"")) == NULL) continue;
                p += 19;  /* ([^"]*)" at \(([^)]*)\) ([0-9A-Fa-f:.]+) */
                const uint8_t *u = p;
                if ((q = memchr(p, '"', (size_t)(end - p))) == NULL || !starts(q, end, "\" at (")) continue;
                const uint8_t *h = q + 6, *he = memchr(h, ')', (size_t)(end - h));
                if (he == NULL || !starts(he, end, ") ")) continue;
                const uint8_t *a = he + 2, *ae = a;
                while (ae < end && is_addr_char(*ae)) ae++;
                if (ae == a) continue;
                put(&f1[j], line, u, t, (int32_t)(q - u)); ok1[j] = 1;
                put(&f2[j], line, h, t, (int32_t)(he - h)); ok2[j] = 1;
                put(&f3[j], line, a, t, (int32_t)(ae - a)); ok3[j] = 1;
            } else if (find(t, end, "-login: ") && find(t, end, "Login: user=")) {
                kind[j] = 2;  /* ^(pop3|imap|managesieve|submission)-login: Login: user=<([^>]*)>.*?rip=([0-9A-Fa-f:.]+) */
                const uint8_t *sv = NULL;
                for (int s = 0; s < 4 && sv == NULL; s++) {
                    size_t m = strlen(services[s]);
                    if ((size_t)(end - t) >= m && memcmp(t, services[s], m) == 0) sv = t + m;
                }
                if (sv == NULL || !starts(sv, end, "-login: Login: user=<")) continue;
                const uint8_t *u = sv + 21, *ue = memchr(u, '>', (size_t)(end - u));
                if (ue == NULL) continue;
                const uint8_t *a = NULL, *ae = NULL;
                for (p = ue + 1; (p = find(p, end, "rip=")) != NULL; p++) {
                    ae = p + 4;
                    while (ae < end && is_addr_char(*ae)) ae++;
                    if (ae > p + 4) { a = p + 4; break; }
                }
                if (a == NULL) continue;
                put(&f1[j], line, t, t, (int32_t)(sv - t)); ok1[j] = 1;
                put(&f2[j], line, u, t, (int32_t)(ue - u)); ok2[j] = 1;
                put(&f3[j], line, a, t, (int32_t)(ae - a)); ok3[j] = 1;
            } else if (starts(t, end, "LOGIN, ")) {
                kind[j] = 3;
            } else if (starts(t, end, "Login user=") || starts(t, end, "Authenticated user=")) {
                kind[j] = 4;
            } else {
                kind[j] = 0;
            }
        }
        Py_END_ALLOW_THREADS
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "pop_logins: output arrays too short");
    }
    PyBuffer_Release(&vb); PyBuffer_Release(&bb); PyBuffer_Release(&kb); PyBuffer_Release(&b1);
    PyBuffer_Release(&k1); PyBuffer_Release(&b2); PyBuffer_Release(&k2); PyBuffer_Release(&b3);
    PyBuffer_Release(&k3);
    if (bad) return NULL;
    Py_RETURN_NONE;
}

static inline int is_alnum(uint8_t ch) {
    return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static inline int is_space(uint8_t ch) {  /* ASCII whitespace, as \s reads it */
    return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

/* sendmail_heads(views, bufs, qid, qid_ok, body, kind) -> None
 * Each sendmail message's queue id ("QID: " or "QID[n]: ", 7-20 letters and digits, within the
 * first 26 bytes; the [n] left out), its body (after "QID: ", else the whole message) and the
 * body's kind: 1 from=, 2 to=, 3 ruleset reject, 4 "<addr>... reason", 0 other, 255 when a byte
 * that is not ASCII leaves the "addr... " pattern to the regex. */
static PyObject *sendmail_heads(PyObject *self, PyObject *args) {
    Py_buffer vb, bb, qb, qok, bdb, kb;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*w*w*w*w*", &vb, &bb, &qb, &qok, &bdb, &kb)) return NULL;
    Py_ssize_t n = n_views(&vb);
    int bad = n < 0 || qb.len < n * 16 || bdb.len < n * 16 || qok.len < n || kb.len < n;
    if (!bad) {
        const view_t *views = vb.buf;
        const uint64_t *bufs = bb.buf;
        view_t *qid = qb.buf, *body = bdb.buf;
        uint8_t *qid_ok = qok.buf, *kind = kb.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t j = 0; j < n; j++) {
            const view_t *line = &views[j];
            const uint8_t *t = text_of(line, bufs), *end = t + line->len, *lim = t + (line->len < 26 ? line->len : 26);
            const uint8_t *p = t, *b = t;
            while (p < lim && is_alnum(*p)) p++;
            const uint8_t *r = p;  /* the end of the letters and digits */
            int ok = r - t >= 7 && r - t <= 20;
            if (ok && p < lim && *p == '[') {
                const uint8_t *d = ++p;
                while (p < lim && *p >= '0' && *p <= '9') p++;
                ok = p > d && p < lim && *p++ == ']';
            }
            ok = ok && p + 2 <= lim && p[0] == ':' && p[1] == ' ';
            memset(&qid[j], 0, 16);
            qid_ok[j] = (uint8_t)ok;
            if (ok) {
                put(&qid[j], line, t, t, (int32_t)(r - t));
                b = p + 2;
            }
            put(&body[j], line, b, t, (int32_t)(end - b));
            if (starts(b, end, "from=")) kind[j] = 1;
            else if (starts(b, end, "to=")) kind[j] = 2;
            else if (starts(b, end, "ruleset=") && find(b, end, ", reject=")) kind[j] = 3;
            else if (find(b, end, ">... ")) kind[j] = 4;
            else {  /* ^[^\s<>]+@[^\s]+\.\.\. : the first whitespace is the space after "..." */
                const uint8_t *s = b, *at = NULL;
                int angle = 0, wide = 0;
                for (; s < end && !is_space(*s); s++) {
                    if (*s >= 0x80) wide = 1;
                    if (*s == '@' && s > b && at == NULL) at = s;
                    if ((*s == '<' || *s == '>') && at == NULL) angle = 1;
                }
                if (wide) kind[j] = 255;
                else kind[j] = (s < end && *s == ' ' && s - b >= 5 && at != NULL && !angle && at <= s - 5
                                && memcmp(s - 3, "...", 3) == 0) ? 4 : 0;
            }
        }
        Py_END_ALLOW_THREADS
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "sendmail_heads: output arrays too short");
    }
    PyBuffer_Release(&vb); PyBuffer_Release(&bb); PyBuffer_Release(&qb); PyBuffer_Release(&qok);
    PyBuffer_Release(&bdb); PyBuffer_Release(&kb);
    if (bad) return NULL;
    Py_RETURN_NONE;
}

/* after_keys(views, bufs, keys, stop, out, ok) -> None
 * For each key (a tuple of bytes) and each string: the text after the key's first occurrence up
 * to the next `stop` byte (or the end; stop < 0: the end), as views in out[key][row]; ok = 0
 * where the key does not occur. */
static PyObject *after_keys(PyObject *self, PyObject *args) {
    Py_buffer vb, bb, ob, okb;
    PyObject *keys;
    int stop;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*O!iw*w*", &vb, &bb, &PyTuple_Type, &keys, &stop, &ob, &okb)) return NULL;
    Py_ssize_t n = n_views(&vb), nk = PyTuple_GET_SIZE(keys);
    int bad = n < 0 || nk > 16 || ob.len < nk * n * 16 || okb.len < nk * n;
    const char *key[16];
    Py_ssize_t klen[16];
    for (Py_ssize_t i = 0; !bad && i < nk; i++) {
        PyObject *k = PyTuple_GET_ITEM(keys, i);
        if (!PyBytes_Check(k) || PyBytes_GET_SIZE(k) == 0) bad = 1;
        else { key[i] = PyBytes_AS_STRING(k); klen[i] = PyBytes_GET_SIZE(k); }
    }
    if (!bad) {
        const view_t *views = vb.buf;
        const uint64_t *bufs = bb.buf;
        view_t *out = ob.buf;
        uint8_t *ok = okb.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t j = 0; j < n; j++) {
            const view_t *line = &views[j];
            const uint8_t *t = text_of(line, bufs), *end = t + line->len;
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
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "after_keys: 1-16 non-empty bytes keys and outputs of their size");
    }
    PyBuffer_Release(&vb); PyBuffer_Release(&bb); PyBuffer_Release(&ob); PyBuffer_Release(&okb);
    if (bad) return NULL;
    Py_RETURN_NONE;
}

static inline int is_upper_hex(uint8_t ch) { return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F'); }

/* the Postfix kinds of postfix_heads, by the first words of the body (parse_postfix._LEAD) */
static const struct { const char *lead; uint8_t kind; } postfix_leads[] = {
    {"to=", 1}, {"from=<", 2}, {"client=", 3}, {"message-id=", 4}, {"removed", 5}, {"uid=", 6}, {"sender=", 6},
    {"reject: ", 7}, {"milter-reject: ", 7}, {"proxy-reject: ", 7}, {"connect from ", 8}, {"disconnect from ", 8},
    {"Anonymous TLS", 8}, {"Trusted TLS", 8}, {"Untrusted TLS", 8}, {"Verified TLS", 8},
};

/* [a-z]+ (?:non-)?delivery (?:status )?notification: */
static int dsn_lead(const uint8_t *p, const uint8_t *end) {
    const uint8_t *w = p;
    while (p < end && *p >= 'a' && *p <= 'z') p++;
    if (p == w || !starts(p, end, " ")) return 0;
    p += 1;
    if (starts(p, end, "non-")) p += 4;
    if (!starts(p, end, "delivery ")) return 0;
    p += 9;
    if (starts(p, end, "status ")) p += 7;
    return starts(p, end, "notification: ");
}

/* postfix_heads(views, bufs, qid, qid_ok, body, kind) -> None
 * Each Postfix message's queue id (parse_postfix._QID_HEAD in the first 22 bytes: 5-20 upper-case
 * hex digits, NOQUEUE (no id) or 12-20 letters and digits, then ": "), its body (after the id,
 * else the whole message) and the body's kind: 1 to, 2 from, 3 client, 4 cleanup, 5 removed,
 * 6 pickup, 7 reject, 8 quiet, 9 dsn, 10 expired (a from= with ", status=expired"), 0 other. */
static PyObject *postfix_heads(PyObject *self, PyObject *args) {
    Py_buffer vb, bb, qb, qok, bdb, kb;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*w*w*w*w*", &vb, &bb, &qb, &qok, &bdb, &kb)) return NULL;
    Py_ssize_t n = n_views(&vb);
    int bad = n < 0 || qb.len < n * 16 || bdb.len < n * 16 || qok.len < n || kb.len < n;
    if (!bad) {
        const view_t *views = vb.buf;
        const uint64_t *bufs = bb.buf;
        view_t *qid = qb.buf, *body = bdb.buf;
        uint8_t *qid_ok = qok.buf, *kind = kb.buf;
        const size_t n_leads = sizeof postfix_leads / sizeof postfix_leads[0];
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t j = 0; j < n; j++) {
            const view_t *line = &views[j];
            const uint8_t *t = text_of(line, bufs), *end = t + line->len, *lim = t + (line->len < 22 ? line->len : 22);
            const uint8_t *r = t, *b = t;
            int hex = 1;
            while (r < lim && is_alnum(*r)) { hex &= is_upper_hex(*r); r++; }
            size_t len = (size_t)(r - t);
            int head = r + 2 <= lim && r[0] == ':' && r[1] == ' ';
            int noqueue = head && len == 7 && memcmp(t, "NOQUEUE", 7) == 0;
            int id = head && !noqueue && ((hex && len >= 5 && len <= 20) || (len >= 12 && len <= 20));
            memset(&qid[j], 0, 16);
            qid_ok[j] = (uint8_t)id;
            if (id) put(&qid[j], line, t, t, (int32_t)len);
            if (id || noqueue) b = r + 2;
            put(&body[j], line, b, t, (int32_t)(end - b));
            uint8_t k = 0;
            for (size_t i = 0; i < n_leads && !k; i++)
                if (starts(b, end, postfix_leads[i].lead)) k = postfix_leads[i].kind;
            if (!k && dsn_lead(b, end)) k = 9;
            if (k == 2 && find(b, end, ", status=expired")) k = 10;
            kind[j] = k;
        }
        Py_END_ALLOW_THREADS
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "postfix_heads: output arrays too short");
    }
    PyBuffer_Release(&vb); PyBuffer_Release(&bb); PyBuffer_Release(&qb); PyBuffer_Release(&qok);
    PyBuffer_Release(&bdb); PyBuffer_Release(&kb);
    if (bad) return NULL;
    Py_RETURN_NONE;
}

static const uint8_t *alnum_run(const uint8_t *p, const uint8_t *end) {
    while (p < end && is_alnum(*p)) p++;
    return p;
}

static inline int exim_flag_char(uint8_t ch) { return ch == '<' || ch == '=' || ch == '-' || ch == '*' || ch == '>'; }

/* exim_heads(views, bufs, qid, qid_ok, flag, flag_ok, body, kind) -> None
 * parse_exim._HEAD on each message: an optional "[pid] ", then optionally the message id
 * (6-(6..11)-(2..4) letters and digits) and a space, then optionally a two-character flag
 * ([<=\-*>]) and a space; body is what follows. kind: 1 from (<=), 2 to (=> -> >> *> == **),
 * 3 reject (no flag, " rejected RCPT "), 4 quiet (no flag, parse_exim._QUIET), 0 other. */
static PyObject *exim_heads(PyObject *self, PyObject *args) {
    Py_buffer vb, bb, qb, qok, fb, fok, bdb, kb;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*w*w*w*w*w*w*", &vb, &bb, &qb, &qok, &fb, &fok, &bdb, &kb)) return NULL;
    Py_ssize_t n = n_views(&vb);
    int bad = n < 0 || qb.len < n * 16 || fb.len < n * 16 || bdb.len < n * 16 || qok.len < n || fok.len < n
              || kb.len < n;
    if (!bad) {
        const view_t *views = vb.buf;
        const uint64_t *bufs = bb.buf;
        view_t *qid = qb.buf, *flag = fb.buf, *body = bdb.buf;
        uint8_t *qid_ok = qok.buf, *flag_ok = fok.buf, *kind = kb.buf;
        static const char *to_flags[] = {"=>", "->", ">>", "*>", "==", "**"};
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t j = 0; j < n; j++) {
            const view_t *line = &views[j];
            const uint8_t *t = text_of(line, bufs), *end = t + line->len, *p = t, *q;
            memset(&qid[j], 0, 16); memset(&flag[j], 0, 16);
            qid_ok[j] = flag_ok[j] = 0;
            if (p < end && *p == '[') {  /* \[[0-9]+\] */
                q = p + 1;
                while (q < end && *q >= '0' && *q <= '9') q++;
                if (q > p + 1 && starts(q, end, "] ")) p = q + 2;
            }
            const uint8_t *a = alnum_run(p, end), *b, *c;
            int id = a - p == 6 && starts(a, end, "-");
            if (id) { b = alnum_run(a + 1, end); id = b - (a + 1) >= 6 && b - (a + 1) <= 11 && starts(b, end, "-"); }
            if (id) { c = alnum_run(b + 1, end); id = c - (b + 1) >= 2 && c - (b + 1) <= 4 && starts(c, end, " "); }
            uint8_t k = 0;
            if (id) {
                put(&qid[j], line, p, t, (int32_t)(c - p));
                qid_ok[j] = 1;
                p = c + 1;
                if (end - p >= 3 && exim_flag_char(p[0]) && exim_flag_char(p[1]) && p[2] == ' ') {
                    put(&flag[j], line, p, t, 2);
                    flag_ok[j] = 1;
                    if (p[0] == '<' && p[1] == '=') k = 1;
                    for (int f = 0; f < 6 && !k; f++)
                        if (p[0] == to_flags[f][0] && p[1] == to_flags[f][1]) k = 2;
                    p += 3;
                }
            }
            put(&body[j], line, p, t, (int32_t)(end - p));
            if (!flag_ok[j]) {
                if (find(p, end, " rejected RCPT ")) k = 3;
                else if (starts(p, end, "Completed") || starts(p, end, "Start queue run")
                         || starts(p, end, "End queue run") || starts(p, end, "Frozen")
                         || starts(p, end, "Message is frozen")) k = 4;
                else if (starts(p, end, "exim ")) {  /* exim [0-9.]+ daemon started */
                    q = p + 5;
                    while (q < end && ((*q >= '0' && *q <= '9') || *q == '.')) q++;
                    if (q > p + 5 && starts(q, end, " daemon started")) k = 4;
                }
            }
            kind[j] = k;
        }
        Py_END_ALLOW_THREADS
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "exim_heads: output arrays too short");
    }
    PyBuffer_Release(&vb); PyBuffer_Release(&bb); PyBuffer_Release(&qb); PyBuffer_Release(&qok);
    PyBuffer_Release(&fb); PyBuffer_Release(&fok); PyBuffer_Release(&bdb); PyBuffer_Release(&kb);
    if (bad) return NULL;
    Py_RETURN_NONE;
}

/* postfix_to(views, bufs, out, ok) -> None
 * The fields of Postfix to= bodies, as views out[field][row] (ok = 0: null): 0 recipient
 * (^to=<?([^,>]*)>?,), 1 relay (after ", relay=" up to ","), 2 status (the word after
 * ", status=" when it is [a-z-]+), 3 detail (what the parentheses after that word hold, when
 * they end the line). */
static PyObject *postfix_to(PyObject *self, PyObject *args) {
    Py_buffer vb, bb, ob, okb;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*w*w*", &vb, &bb, &ob, &okb)) return NULL;
    Py_ssize_t n = n_views(&vb);
    int bad = n < 0 || ob.len < 4 * n * 16 || okb.len < 4 * n;
    if (!bad) {
        const view_t *views = vb.buf;
        const uint64_t *bufs = bb.buf;
        view_t *out = ob.buf;
        uint8_t *ok = okb.buf;
        memset(out, 0, (size_t)(4 * n * 16));
        memset(ok, 0, (size_t)(4 * n));
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t j = 0; j < n; j++) {
            const view_t *line = &views[j];
            const uint8_t *t = text_of(line, bufs), *end = t + line->len, *p, *q;
            if (starts(t, end, "to=")) {
                p = t + 3;
                if (p < end && *p == '<') p++;
                for (q = p; q < end && *q != ',' && *q != '>'; q++) {}
                const uint8_t *c = (q < end && *q == '>') ? q + 1 : q;
                if (c < end && *c == ',') { put(&out[j], line, p, t, (int32_t)(q - p)); ok[j] = 1; }
            }
            if ((p = find(t, end, ", relay=")) != NULL) {
                p += 8;
                q = memchr(p, ',', (size_t)(end - p));
                put(&out[n + j], line, p, t, (int32_t)((q ? q : end) - p));
                ok[n + j] = 1;
            }
            if ((p = find(t, end, ", status=")) != NULL) {
                p += 9;  /* the word, up to a space or the end */
                const uint8_t *sp = memchr(p, ' ', (size_t)(end - p)), *we = sp ? sp : end;
                int word = we > p;
                for (q = p; q < we && word; q++) word = (*q >= 'a' && *q <= 'z') || *q == '-';
                if (word) {
                    put(&out[2 * n + j], line, p, t, (int32_t)(we - p));
                    ok[2 * n + j] = 1;
                    if (sp && end - sp >= 3 && sp[1] == '(' && end[-1] == ')') {
                        put(&out[3 * n + j], line, sp + 2, t, (int32_t)(end - 1 - (sp + 2)));
                        ok[3 * n + j] = 1;
                    }
                }
            }
        }
        Py_END_ALLOW_THREADS
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "postfix_to: output arrays too short");
    }
    PyBuffer_Release(&vb); PyBuffer_Release(&bb); PyBuffer_Release(&ob); PyBuffer_Release(&okb);
    if (bad) return NULL;
    Py_RETURN_NONE;
}

static inline int is_word(uint8_t ch) { return is_alnum(ch) || ch == '_'; }

static const uint8_t *nonspace_run(const uint8_t *p, const uint8_t *end) {
    while (p < end && !is_space(*p)) p++;
    return p;
}

/* the leftmost "KEY" (2 bytes, a word character first) with a word boundary before it that
 * `tail` accepts; returns the match's end or NULL, *value the value's start */
typedef const uint8_t *(*tail_fn)(const uint8_t *p, const uint8_t *end);

static const uint8_t *keyed(const uint8_t *t, const uint8_t *end, const char *key, tail_fn tail,
                            const uint8_t **value) {
    for (const uint8_t *p = t; (p = find(p, end, key)) != NULL; p++) {
        if (p > t && is_word(p[-1])) continue;
        const uint8_t *e = tail(p + 2, end);
        if (e) { *value = p + 2; return e; }
    }
    return NULL;
}

static const uint8_t *digits_tail(const uint8_t *p, const uint8_t *end) {  /* \d+ */
    const uint8_t *q = p;
    while (q < end && *q >= '0' && *q <= '9') q++;
    return q > p ? q : NULL;
}

static const uint8_t *nonspace_tail(const uint8_t *p, const uint8_t *end) {  /* \S+ */
    const uint8_t *q = nonspace_run(p, end);
    return q > p ? q : NULL;
}

/* ([^\s\[(]+ )?(\([^)]*\) )?\[[0-9A-Fa-f:.]+\] in the regex's order of preference */
static const uint8_t *host_tail(const uint8_t *p, const uint8_t *end) {
    const uint8_t *name = p;
    while (name < end && !is_space(*name) && *name != '[' && *name != '(') name++;
    const uint8_t *after_name = (name > p && name < end && *name == ' ') ? name + 1 : NULL;
    const uint8_t *starts_at[2] = {after_name, p};
    for (int a = 0; a < 2; a++) {
        const uint8_t *q = starts_at[a];
        if (q == NULL) continue;
        const uint8_t *after_helo = NULL;
        if (q < end && *q == '(') {
            const uint8_t *c = memchr(q + 1, ')', (size_t)(end - q - 1));
            if (c && c + 1 < end && c[1] == ' ') after_helo = c + 2;
        }
        const uint8_t *cs[2] = {after_helo, q};
        for (int b = 0; b < 2; b++) {
            const uint8_t *r = cs[b];
            if (r == NULL || r >= end || *r != '[') continue;
            const uint8_t *x = r + 1;
            while (x < end && is_addr_char(*x)) x++;
            if (x > r + 1 && x < end && *x == ']') return x + 1;
        }
    }
    return NULL;
}

#define EXIM_FIELDS 5
/* exim_fields(views, bufs, to, out, ok, wide) -> None
 * parse_exim's field regexes on ASCII bodies (wide = 1: a byte that is not ASCII, left to the
 * regexes). from= rows (to = 0): 0 sender ^(<>|\S+), 1 size \bS=(\d+), 2 host (parse_exim._HOST),
 * 3 for-list " for (.+)$". Deliveries (to = 1): 0 first word ^(\S+), 1 original recipient
 * ^\S+ <([^>]+)>, 2 host, 3 mailer \bT=(\S+), 4 detail ^\S+(?: <[^>]*>)?:? (.*)$. */
static PyObject *exim_fields(PyObject *self, PyObject *args) {
    Py_buffer vb, bb, ob, okb, wb;
    int to;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*iw*w*w*", &vb, &bb, &to, &ob, &okb, &wb)) return NULL;
    Py_ssize_t n = n_views(&vb);
    int bad = n < 0 || ob.len < EXIM_FIELDS * n * 16 || okb.len < EXIM_FIELDS * n || wb.len < n;
    if (!bad) {
        const view_t *views = vb.buf;
        const uint64_t *bufs = bb.buf;
        view_t *out = ob.buf;
        uint8_t *ok = okb.buf, *wide = wb.buf;
        memset(out, 0, (size_t)(EXIM_FIELDS * n * 16));
        memset(ok, 0, (size_t)(EXIM_FIELDS * n));
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t j = 0; j < n; j++) {
            const view_t *line = &views[j];
            const uint8_t *t = text_of(line, bufs), *end = t + line->len, *v = NULL, *e, *w;
            uint8_t acc = 0;
            for (const uint8_t *p = t; p < end; p++) acc |= *p;
            wide[j] = acc >> 7;
            if (wide[j]) continue;
#define SET(f, from, to_) do { put(&out[(f) * n + j], line, (from), t, (int32_t)((to_) - (from))); ok[(f) * n + j] = 1; } while (0)
            w = nonspace_run(t, end);  /* the first word */
            if ((e = keyed(t, end, "H=", host_tail, &v)) != NULL) SET(2, v, e);
            if (!to) {
                if (starts(t, end, "<>")) SET(0, t, t + 2);
                else if (w > t) SET(0, t, w);
                if ((e = keyed(t, end, "S=", digits_tail, &v)) != NULL) SET(1, v, e);
                const uint8_t *f = find(t, end, " for ");
                if (f && f + 5 < end) SET(3, f + 5, end);
                continue;
            }
            if ((e = keyed(t, end, "T=", nonspace_tail, &v)) != NULL) SET(3, v, e);
            if (w == t) continue;
            SET(0, t, w);
            if (w + 1 < end && w[0] == ' ' && w[1] == '<') {
                const uint8_t *gt = memchr(w + 2, '>', (size_t)(end - w - 2));
                if (gt && gt > w + 2) SET(1, w + 2, gt);
            }
            if (w < end && *w == ' ') {  /* the detail: after " <orig>:? " if that fits, else after the space */
                const uint8_t *d = w + 1;
                if (w + 1 < end && w[1] == '<') {
                    const uint8_t *gt = memchr(w + 2, '>', (size_t)(end - w - 2));
                    if (gt) {
                        const uint8_t *c = gt + 1;
                        if (c < end && *c == ':') c++;
                        if (c < end && *c == ' ') d = c + 1;
                    }
                }
                SET(4, d, end);
            }
#undef SET
        }
        Py_END_ALLOW_THREADS
    } else if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "exim_fields: output arrays too short");
    }
    PyBuffer_Release(&vb); PyBuffer_Release(&bb); PyBuffer_Release(&ob); PyBuffer_Release(&okb);
    PyBuffer_Release(&wb);
    if (bad) return NULL;
    Py_RETURN_NONE;
}

/* all_ascii(views, bufs) -> bool: no byte of any string is 0x80 or above */
static PyObject *all_ascii(PyObject *self, PyObject *args) {
    Py_buffer vb, bb;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*", &vb, &bb)) return NULL;
    Py_ssize_t n = n_views(&vb);
    uint8_t acc = 0;
    if (n >= 0) {
        const view_t *views = vb.buf;
        const uint64_t *bufs = bb.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t j = 0; j < n && !(acc & 0x80); j++) {
            const uint8_t *t = text_of(&views[j], bufs);
            for (int32_t k = 0; k < views[j].len; k++) acc |= t[k];
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&vb);
    PyBuffer_Release(&bb);
    if (n < 0) return NULL;
    return PyBool_FromLong(!(acc & 0x80));
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
    {"pop_logins", pop_logins, METH_VARARGS, "POP/IMAP login kinds and the fields of their common forms."},
    {"sendmail_heads", sendmail_heads, METH_VARARGS, "sendmail queue ids, bodies and kinds."},
    {"after_keys", after_keys, METH_VARARGS, "The text after each key, up to a stop byte."},
    {"postfix_heads", postfix_heads, METH_VARARGS, "Postfix queue ids, bodies and kinds."},
    {"exim_heads", exim_heads, METH_VARARGS, "Exim message ids, flags, bodies and kinds."},
    {"postfix_to", postfix_to, METH_VARARGS, "The recipient, relay, status and detail of Postfix to= lines."},
    {"exim_fields", exim_fields, METH_VARARGS, "The fields of Exim arrival and delivery lines."},
    {"all_ascii", all_ascii, METH_VARARGS, "Whether every byte of every string is ASCII."},
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
