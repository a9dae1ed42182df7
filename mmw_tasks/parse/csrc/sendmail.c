/* sendmail from= and to= lines (sendmail.py): every field of the common form in one pass.
 * A line not in that form gets fast = 0 and sendmail.py's expressions read it, as before:
 * a byte that is not ASCII (those expressions read Unicode digits, spaces and case), an upper-case
 * address (lower-cased there), a missing or overlong number, a list of recipients, a status other
 * than "Sent...". tests/test_kernels.py compares the two on the lines this one takes. */
#include "views.h"

typedef struct {
    const uint8_t *p, *e;
} span_t;

static int ascii_only(const uint8_t *p, const uint8_t *end) {
    uint8_t acc = 0;
    for (; p < end; p++) acc |= *p;
    return acc < 0x80;
}

/* For each key, where ", key" first occurs (NULL: nowhere), in one pass over the commas: every
 * occurrence of ", key" begins at a comma, so the first comma followed by " key" is memmem's. */
static void keys_at_commas(const uint8_t *t, const uint8_t *end, const char *const *keys, int nk,
                           const uint8_t **at) {
    size_t len[8];
    int left = nk;
    for (int k = 0; k < nk; k++) { at[k] = NULL; len[k] = strlen(keys[k]); }
    for (const uint8_t *p = t; left > 0 && (p = memchr(p, ',', (size_t)(end - p))) != NULL; p++) {
        if (end - p < 3 || p[1] != ' ') continue;
        const uint8_t *w = p + 2;
        for (int k = 0; k < nk; k++)
            if (at[k] == NULL && *w == (uint8_t)keys[k][0] && (size_t)(end - w) >= len[k]
                && memcmp(w, keys[k], len[k]) == 0) { at[k] = p; left--; }
    }
}

/* the text after ", key" found at `at`, up to the next comma or the end (afters in fields.py) */
static int after(const uint8_t *at, const uint8_t *end, const char *key, span_t *out) {
    if (at == NULL) return 0;
    out->p = at + 2 + strlen(key);
    const uint8_t *c = memchr(out->p, ',', (size_t)(end - out->p));
    out->e = c ? c : end;
    return 1;
}

/* the number the span starts with (fields.digits), 1 to `most` ASCII digits; 0: none or longer */
static int number(const span_t *s, int most, int64_t *value) {
    const uint8_t *p = s->p;
    int64_t v = 0;
    while (p < s->e && *p >= '0' && *p <= '9') {
        if (p - s->p == most) return 0;
        v = v * 10 + (*p++ - '0');
    }
    *value = v;
    return p > s->p;
}

/* fields.addr on ASCII text: spaces and angle brackets off both ends; 0 when a capital
 * letter is left (the expressions lower-case it) */
static int address(span_t *s) {
    while (s->p < s->e && (*s->p == ' ' || *s->p == '<' || *s->p == '>')) s->p++;
    while (s->e > s->p && (s->e[-1] == ' ' || s->e[-1] == '<' || s->e[-1] == '>')) s->e--;
    for (const uint8_t *p = s->p; p < s->e; p++)
        if (*p >= 'A' && *p <= 'Z') return 0;
    return 1;
}

/* fields.domain: what follows the last @ when none of @ > " or a space is in it, less one
 * final dot */
static int domain_of(const span_t *a, span_t *d) {
    const uint8_t *at = NULL;
    for (const uint8_t *p = a->p; p < a->e; p++)
        if (*p == '@') at = p;
    if (at == NULL || at + 1 == a->e) return 0;
    for (const uint8_t *p = at + 1; p < a->e; p++)
        if (*p == '>' || *p == '"' || is_space(*p)) return 0;
    d->p = at + 1;
    d->e = a->e[-1] == '.' ? a->e - 1 : a->e;
    return 1;
}

static void put_span(view_t *out, uint8_t *ok, const view_t *line, const uint8_t *t, const span_t *s) {
    put(out, line, s->p, t, (int32_t)(s->e - s->p));
    *ok = 1;
}

/* rows_open for a kernel that writes `nf` view fields, their ok flags and a fast flag per row:
 * args (views, bufs, out, ok, fast), all zeroed; 0 or -1 */
static int fields_open(rows_t *r, PyObject *args, int nf, const char *name, view_t **out, uint8_t **ok,
                       uint8_t **fast) {
    const int width[] = {nf * 16, nf, 1};
    if (rows_open(r, args, 2, width, 3, name) < 0) return -1;
    *out = ROWS_OUT(r, 0);
    *ok = ROWS_OUT(r, 1);
    *fast = ROWS_OUT(r, 2);
    memset(*out, 0, (size_t)(nf * r->n * 16));
    memset(*ok, 0, (size_t)(nf * r->n));
    memset(*fast, 0, (size_t)r->n);
    return 0;
}

static const char *const from_keys[] = {"size=", "nrcpts=", "relay="};

/* sendmail_from(views, bufs, out, ok, nums, fast) -> None
 * from= bodies: out[0] sender, out[1] relay (ok = 0: null), nums[0] size, nums[1] nrcpts. */
PyObject *sendmail_from(PyObject *self, PyObject *args) {
    static const int width[] = {2 * 16, 2, 2 * 8, 1};
    rows_t r;
    (void)self;
    if (rows_open(&r, args, 2, width, 4, "sendmail_from") < 0) return NULL;
    view_t *out = ROWS_OUT(&r, 0);
    uint8_t *ok = ROWS_OUT(&r, 1), *fast = ROWS_OUT(&r, 3);
    int64_t *nums = ROWS_OUT(&r, 2);
    Py_ssize_t n = r.n;
    memset(out, 0, (size_t)(2 * n * 16));
    memset(ok, 0, (size_t)(2 * n));
    memset(nums, 0, (size_t)(2 * n * 8));
    memset(fast, 0, (size_t)n);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < n; j++) {
        const view_t *line = &r.views[j];
        const uint8_t *t = text_of(line, r.bufs), *end = t + line->len;
        prefetch_text(r.views, j, r.n, r.bufs);
        span_t sender, size, nrcpts, relay;
        const uint8_t *at[3];
        if (!starts(t, end, "from=") || !ascii_only(t, end)) continue;
        /* "from=<addr>" up to the first '>', else up to the first comma */
        const uint8_t *gt = memchr(t, '>', (size_t)line->len), *comma = memchr(t, ',', (size_t)line->len);
        sender.p = t + 5;
        sender.e = (starts(t, end, "from=<") && gt) ? gt + 1 : (comma ? comma : end);
        keys_at_commas(t, end, from_keys, 3, at);
        if (!address(&sender) || !after(at[0], end, "size=", &size) || !after(at[1], end, "nrcpts=", &nrcpts)
            || !number(&size, 18, &nums[j]) || !number(&nrcpts, 9, &nums[n + j]))
            continue;
        put_span(&out[j], &ok[j], line, t, &sender);
        if (after(at[2], end, "relay=", &relay)) put_span(&out[n + j], &ok[n + j], line, t, &relay);
        fast[j] = 1;
    }
    Py_END_ALLOW_THREADS
    rows_close(&r);
    Py_RETURN_NONE;
}

/* sendmail_to(views, bufs, out, ok, fast) -> None
 * to= bodies of one recipient delivered ("stat=Sent..."): out[0] recipient, out[1] its domain,
 * out[2] mailer, out[3] relay, out[4] stat (to the end of the line). */
PyObject *sendmail_to(PyObject *self, PyObject *args) {
    /* the list ends at the first of the first three; then the fields */
    static const char *const keys[] = {"ctladdr=", "delay=", "[more]", "stat=", "mailer=", "relay="};
    rows_t r;
    view_t *out;
    uint8_t *ok, *fast;
    (void)self;
    if (fields_open(&r, args, 5, "sendmail_to", &out, &ok, &fast) < 0) return NULL;
    Py_ssize_t n = r.n;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < n; j++) {
        const view_t *line = &r.views[j];
        const uint8_t *t = text_of(line, r.bufs), *end = t + line->len, *at[6];
        prefetch_text(r.views, j, r.n, r.bufs);
        span_t rcpt = {t + 3, NULL}, dom, mailer, relay, stat;
        if (!starts(t, end, "to=") || !ascii_only(t, end)) continue;
        keys_at_commas(t, end, keys, 6, at);
        for (int k = 0; k < 3; k++)
            if (at[k] != NULL && (rcpt.e == NULL || at[k] < rcpt.e)) rcpt.e = at[k];
        if (rcpt.e == NULL || rcpt.e == rcpt.p || memchr(rcpt.p, ',', (size_t)(rcpt.e - rcpt.p))) continue;
        if (at[3] == NULL || !starts(at[3] + 7, end, "Sent") || !address(&rcpt)) continue;
        stat.p = at[3] + 7;
        stat.e = end;
        put_span(&out[j], &ok[j], line, t, &rcpt);
        if (domain_of(&rcpt, &dom)) put_span(&out[n + j], &ok[n + j], line, t, &dom);
        if (after(at[4], end, "mailer=", &mailer)) put_span(&out[2 * n + j], &ok[2 * n + j], line, t, &mailer);
        if (after(at[5], end, "relay=", &relay)) put_span(&out[3 * n + j], &ok[3 * n + j], line, t, &relay);
        put_span(&out[4 * n + j], &ok[4 * n + j], line, t, &stat);
        fast[j] = 1;
    }
    Py_END_ALLOW_THREADS
    rows_close(&r);
    Py_RETURN_NONE;
}

/* sendmail_reject(views, bufs, out, ok, fast) -> None
 * "<addr>... reason" bodies, as sendmail._REJECT reads them (^<?([^>\s]*?)>?\.\.\. (.*)$, the
 * shortest address, with and then without the '<'): out[0] the recipient (fields.addr),
 * out[1] its domain, out[2] the reason. fast = 0: not ASCII, a capital in the address, or no match. */
PyObject *sendmail_reject(PyObject *self, PyObject *args) {
    rows_t r;
    view_t *out;
    uint8_t *ok, *fast;
    (void)self;
    if (fields_open(&r, args, 3, "sendmail_reject", &out, &ok, &fast) < 0) return NULL;
    Py_ssize_t n = r.n;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < n; j++) {
        const view_t *line = &r.views[j];
        const uint8_t *t = text_of(line, r.bufs), *end = t + line->len;
        prefetch_text(r.views, j, r.n, r.bufs);
        span_t rcpt = {NULL, NULL}, dom, reason = {NULL, end};
        if (!ascii_only(t, end)) continue;
        for (int with_angle = 1; with_angle >= 0 && reason.p == NULL; with_angle--) {
            if (with_angle && (t == end || *t != '<')) continue;
            const uint8_t *e = t + with_angle;
            for (; e < end; e++) {
                if (*e == '>' && starts(e + 1, end, "... ")) { reason.p = e + 5; break; }
                if (starts(e, end, "... ")) { reason.p = e + 4; break; }
                if (*e == '>' || is_space(*e)) break;
            }
            if (reason.p != NULL) { rcpt.p = t + with_angle; rcpt.e = e; }
        }
        if (reason.p == NULL || !address(&rcpt)) continue;
        put_span(&out[j], &ok[j], line, t, &rcpt);
        if (domain_of(&rcpt, &dom)) put_span(&out[n + j], &ok[n + j], line, t, &dom);
        put_span(&out[2 * n + j], &ok[2 * n + j], line, t, &reason);
        fast[j] = 1;
    }
    Py_END_ALLOW_THREADS
    rows_close(&r);
    Py_RETURN_NONE;
}
