/* Exim main log: message id, flag, body and kind, and the fields of arrivals and deliveries
 * (exim.py's _HEAD, _QUIET, _FROM_FIELDS and _TO_FIELDS; tests/test_kernels.py compares). */
#include "views.h"

static const uint8_t *alnum_run(const uint8_t *p, const uint8_t *end) {
    while (p < end && is_alnum(*p)) p++;
    return p;
}

static inline int exim_flag_char(uint8_t ch) { return ch == '<' || ch == '=' || ch == '-' || ch == '*' || ch == '>'; }

/* exim_heads(views, bufs, qid, qid_ok, flag, flag_ok, body, kind) -> None
 * _HEAD on each message: an optional "[pid] ", then optionally the message id (6-(6..11)-(2..4)
 * letters and digits) and a space, then optionally a two-character flag ([<=\-*>]) and a space;
 * body is what follows. kind: 1 from (<=), 2 to (=> -> >> *> == **), 3 reject (no flag,
 * " rejected RCPT "), 4 quiet (no flag, _QUIET), 0 other. */
PyObject *exim_heads(PyObject *self, PyObject *args) {
    static const int width[] = {16, 1, 16, 1, 16, 1};
    static const char *to_flags[] = {"=>", "->", ">>", "*>", "==", "**"};
    rows_t r;
    (void)self;
    if (rows_open(&r, args, 2, width, 6, "exim_heads") < 0) return NULL;
    view_t *qid = ROWS_OUT(&r, 0), *flag = ROWS_OUT(&r, 2), *body = ROWS_OUT(&r, 4);
    uint8_t *qid_ok = ROWS_OUT(&r, 1), *flag_ok = ROWS_OUT(&r, 3), *kind = ROWS_OUT(&r, 5);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < r.n; j++) {
        const view_t *line = &r.views[j];
        const uint8_t *t = text_of(line, r.bufs), *end = t + line->len, *p = t, *q;
        prefetch_text(r.views, j, r.n, r.bufs);
        memset(&qid[j], 0, 16); memset(&flag[j], 0, 16);
        qid_ok[j] = flag_ok[j] = 0;
        if (p < end && *p == '[') { /* \[[0-9]+\] */
            q = p + 1;
            while (q < end && *q >= '0' && *q <= '9') q++;
            if (q > p + 1 && starts(q, end, "] ")) p = q + 2;
        }
        const uint8_t *a = alnum_run(p, end), *b = NULL, *c = NULL;
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
            else if (starts(p, end, "Completed") || starts(p, end, "Start queue run") || starts(p, end, "End queue run")
                     || starts(p, end, "Frozen") || starts(p, end, "Message is frozen")) k = 4;
            else if (starts(p, end, "exim ")) { /* exim [0-9.]+ daemon started */
                q = p + 5;
                while (q < end && ((*q >= '0' && *q <= '9') || *q == '.')) q++;
                if (q > p + 5 && starts(q, end, " daemon started")) k = 4;
            }
        }
        kind[j] = k;
    }
    Py_END_ALLOW_THREADS
    rows_close(&r);
    Py_RETURN_NONE;
}

static inline int is_word(uint8_t ch) { return is_alnum(ch) || ch == '_'; }

static const uint8_t *nonspace_run(const uint8_t *p, const uint8_t *end) {
    while (p < end && !is_space(*p)) p++;
    return p;
}

/* what follows "KEY=" when it matches, its end, or NULL */
typedef const uint8_t *(*tail_fn)(const uint8_t *p, const uint8_t *end);

/* \bKEY=tail: the leftmost "KEY" (2 bytes, a word character first) with a word boundary before
 * it whose tail matches; returns the match's end (or NULL), *value the tail's start */
static const uint8_t *keyed(const uint8_t *t, const uint8_t *end, const char *key, tail_fn tail,
                            const uint8_t **value) {
    for (const uint8_t *p = t; (p = find(p, end, key)) != NULL; p++) {
        if (p > t && is_word(p[-1])) continue;
        const uint8_t *e = tail(p + 2, end);
        if (e) { *value = p + 2; return e; }
    }
    return NULL;
}

static const uint8_t *digits_tail(const uint8_t *p, const uint8_t *end) { /* \d+ */
    const uint8_t *q = p;
    while (q < end && *q >= '0' && *q <= '9') q++;
    return q > p ? q : NULL;
}

static const uint8_t *nonspace_tail(const uint8_t *p, const uint8_t *end) { /* \S+ */
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
            const uint8_t *s = cs[b];
            if (s == NULL || s >= end || *s != '[') continue;
            const uint8_t *x = s + 1;
            while (x < end && is_addr_char(*x)) x++;
            if (x > s + 1 && x < end && *x == ']') return x + 1;
        }
    }
    return NULL;
}

#define EXIM_FIELDS 5
/* exim_fields(views, bufs, to, out, ok, wide) -> None
 * The field regexes on ASCII bodies (wide = 1: a byte that is not ASCII, left to the regexes).
 * Arrivals (to = 0): 0 sender ^(<>|\S+), 1 size \bS=(\d+), 2 host (_HOST), 3 for-list
 * " for (.+)$". Deliveries (to = 1): 0 first word ^(\S+), 1 original recipient ^\S+ <([^>]+)>,
 * 2 host, 3 mailer \bT=(\S+), 4 detail ^\S+(?: <[^>]*>)?:? (.*)$. out and ok are field-major. */
PyObject *exim_fields(PyObject *self, PyObject *args) {
    static const int width[] = {EXIM_FIELDS * 16, EXIM_FIELDS, 1};
    rows_t r;
    long to = 0;
    (void)self;
    if (rows_open(&r, args, 3, width, 3, "exim_fields") < 0) return NULL;
    if ((to = PyLong_AsLong(PyTuple_GET_ITEM(args, 2))) == -1 && PyErr_Occurred()) {
        rows_close(&r);
        return NULL;
    }
    view_t *out = ROWS_OUT(&r, 0);
    uint8_t *ok = ROWS_OUT(&r, 1), *wide = ROWS_OUT(&r, 2);
    Py_ssize_t n = r.n;
    memset(out, 0, (size_t)(EXIM_FIELDS * n * 16));
    memset(ok, 0, (size_t)(EXIM_FIELDS * n));
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < n; j++) {
        const view_t *line = &r.views[j];
        const uint8_t *t = text_of(line, r.bufs), *end = t + line->len, *v = NULL, *e, *w;
        prefetch_text(r.views, j, r.n, r.bufs);
        uint8_t acc = 0;
        for (const uint8_t *p = t; p < end; p++) acc |= *p;
        wide[j] = acc >> 7;
        if (wide[j]) continue;
#define SET(f, from, to_) do { put(&out[(f) * n + j], line, (from), t, (int32_t)((to_) - (from))); ok[(f) * n + j] = 1; } while (0)
        w = nonspace_run(t, end); /* the end of the first word */
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
        if (w < end && *w == ' ') { /* the detail: after " <orig>:? " if that fits, else after the space */
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
    rows_close(&r);
    Py_RETURN_NONE;
}
