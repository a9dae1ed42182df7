/* Mail: POP/IMAP logins, and the queue ids, kinds and fields of sendmail, Postfix and Exim lines.
 * Each function reads what a regex or a chain of polars expressions in the parsers describes;
 * tests/test_kernels.py compares the two. */
#include "views.h"

/* ---- POP/IMAP logins (pop.py) ---- */

/* pop_logins(views, bufs, kind, f1, ok1, f2, ok2, f3, ok3) -> int
 * Each message's login kind (1 qpopper, 2 Dovecot, 3 Courier, 4 UW, 0 none) and, for the common
 * qpopper and Dovecot forms (pop._QPOPPER_TAIL, _DOVECOT_HEAD), their fields: qpopper user,
 * host, address; Dovecot service, user, address (ok = 0: not that form). Returns POP_CASED when
 * some user or host read has a capital or a byte that is not ASCII (pop.py lower-cases them),
 * | POP_MAPPED when some address read begins "::ffff:" (pop.py leaves that out). */
static int cased(const uint8_t *p, const uint8_t *e) {
    for (; p < e; p++)
        if ((*p >= 'A' && *p <= 'Z') || *p >= 0x80) return 1;
    return 0;
}

PyObject *pop_logins(PyObject *self, PyObject *args) {
    static const int width[] = {1, 16, 1, 16, 1, 16, 1};
    static const char *services[] = {"pop3", "imap", "managesieve", "submission"};
    long flags = 0;
    rows_t r;
    (void)self;
    if (rows_open(&r, args, 2, width, 7, "pop_logins") < 0) return NULL;
    uint8_t *kind = ROWS_OUT(&r, 0), *ok1 = ROWS_OUT(&r, 2), *ok2 = ROWS_OUT(&r, 4), *ok3 = ROWS_OUT(&r, 6);
    view_t *f1 = ROWS_OUT(&r, 1), *f2 = ROWS_OUT(&r, 3), *f3 = ROWS_OUT(&r, 5);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < r.n; j++) {
        const view_t *line = &r.views[j];
        const uint8_t *t = text_of(line, r.bufs), *end = t + line->len, *p, *q;
        prefetch_text(r.views, j, r.n, r.bufs);
        memset(&f1[j], 0, 16); memset(&f2[j], 0, 16); memset(&f3[j], 0, 16);
        ok1[j] = ok2[j] = ok3[j] = 0;
        kind[j] = 0;
        if (find(t, end, "POP login by user") != NULL) {
            kind[j] = 1;
            if ((p = find(t, end, "POP login by user \"")) == NULL) continue;
            p += 19; /* ([^"]*)" at \(([^)]*)\) ([0-9A-Fa-f:.]+) */
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
            if (cased(u, q) || cased(h, he)) flags |= POP_CASED;
            if (starts(a, ae, "::ffff:")) flags |= POP_MAPPED;
        } else if (find(t, end, "-login: ") && find(t, end, "Login: user=")) {
            kind[j] = 2; /* ^(pop3|imap|managesieve|submission)-login: Login: user=<([^>]*)>.*?rip=([0-9A-Fa-f:.]+) */
            const uint8_t *sv = NULL;
            for (int s = 0; s < 4 && sv == NULL; s++)
                if (starts(t, end, services[s])) sv = t + strlen(services[s]);
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
            if (cased(u, ue)) flags |= POP_CASED;
            if (starts(a, ae, "::ffff:")) flags |= POP_MAPPED;
        } else if (starts(t, end, "LOGIN, ")) {
            kind[j] = 3;
        } else if (starts(t, end, "Login user=") || starts(t, end, "Authenticated user=")) {
            kind[j] = 4;
        }
    }
    Py_END_ALLOW_THREADS
    rows_close(&r);
    return PyLong_FromLong(flags);
}

/* ---- queue id, body and kind: sendmail and Postfix ---- */

/* one message: writes its queue id (or an empty view, *qid_ok = 0) and body, returns its kind */
typedef uint8_t (*head_fn)(const view_t *line, const uint8_t *t, const uint8_t *end, view_t *qid,
                           uint8_t *qid_ok, view_t *body);

/* heads(views, bufs, qid, qid_ok, body, kind) -> None, one message at a time by `fn` */
static PyObject *heads(PyObject *args, head_fn fn, const char *name) {
    static const int width[] = {16, 1, 16, 1};
    rows_t r;
    if (rows_open(&r, args, 2, width, 4, name) < 0) return NULL;
    view_t *qid = ROWS_OUT(&r, 0), *body = ROWS_OUT(&r, 2);
    uint8_t *qid_ok = ROWS_OUT(&r, 1), *kind = ROWS_OUT(&r, 3);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < r.n; j++) {
        const view_t *line = &r.views[j];
        const uint8_t *t = text_of(line, r.bufs);
        prefetch_text(r.views, j, r.n, r.bufs);
        memset(&qid[j], 0, 16);
        qid_ok[j] = 0;
        kind[j] = fn(line, t, t + line->len, &qid[j], &qid_ok[j], &body[j]);
    }
    Py_END_ALLOW_THREADS
    rows_close(&r);
    Py_RETURN_NONE;
}

/* sendmail (sendmail._QID_HEAD within the first 26 bytes: 7-20 letters and digits, an optional
 * [n] left out of the id, ": "); kinds 1 from=, 2 to=, 3 ruleset reject, 4 "<addr>... reason",
 * 0 other, 255 when a byte that is not ASCII leaves the "addr... " pattern to the regex */
static uint8_t sendmail_head(const view_t *line, const uint8_t *t, const uint8_t *end, view_t *qid,
                             uint8_t *qid_ok, view_t *body) {
    const uint8_t *lim = t + (line->len < 26 ? line->len : 26), *p = t, *b = t;
    while (p < lim && is_alnum(*p)) p++;
    const uint8_t *r = p; /* the end of the letters and digits */
    int ok = r - t >= 7 && r - t <= 20;
    if (ok && p < lim && *p == '[') {
        const uint8_t *d = ++p;
        while (p < lim && *p >= '0' && *p <= '9') p++;
        ok = p > d && p < lim && *p++ == ']';
    }
    ok = ok && p + 2 <= lim && p[0] == ':' && p[1] == ' ';
    if (ok) {
        put(qid, line, t, t, (int32_t)(r - t));
        *qid_ok = 1;
        b = p + 2;
    }
    put(body, line, b, t, (int32_t)(end - b));
    if (starts(b, end, "from=")) return 1;
    if (starts(b, end, "to=")) return 2;
    if (starts(b, end, "ruleset=") && find(b, end, ", reject=")) return 3;
    if (find(b, end, ">... ")) return 4;
    /* ^[^\s<>]+@[^\s]+\.\.\. : the first whitespace is the space after "..." */
    const uint8_t *s = b, *at = NULL;
    int angle = 0;
    for (; s < end && !is_space(*s); s++) {
        if (*s >= 0x80) return 255;
        if (*s == '@' && s > b && at == NULL) at = s;
        if ((*s == '<' || *s == '>') && at == NULL) angle = 1;
    }
    return (s < end && *s == ' ' && at != NULL && !angle && at <= s - 5 && memcmp(s - 3, "...", 3) == 0) ? 4 : 0;
}

PyObject *sendmail_heads(PyObject *self, PyObject *args) {
    (void)self;
    return heads(args, sendmail_head, "sendmail_heads");
}

static inline int is_upper_hex(uint8_t ch) { return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F'); }

/* Postfix kinds by the first words of the body (postfix._LEAD, _LEAD_KIND) */
static const struct {
    const char *lead;
    uint8_t kind;
} postfix_leads[] = {
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

/* Postfix (postfix._QID_HEAD in the first 22 bytes: 5-20 upper-case hex digits, NOQUEUE
 * (no id) or 12-20 letters and digits, then ": "); kinds 1 to, 2 from, 3 client, 4 cleanup,
 * 5 removed, 6 pickup, 7 reject, 8 quiet, 9 dsn, 10 expired (a from= with ", status=expired"),
 * 0 other */
static uint8_t postfix_head(const view_t *line, const uint8_t *t, const uint8_t *end, view_t *qid,
                            uint8_t *qid_ok, view_t *body) {
    const uint8_t *lim = t + (line->len < 22 ? line->len : 22), *r = t, *b = t;
    int hex = 1;
    while (r < lim && is_alnum(*r)) { hex &= is_upper_hex(*r); r++; }
    size_t len = (size_t)(r - t);
    int head = r + 2 <= lim && r[0] == ':' && r[1] == ' ';
    int noqueue = head && len == 7 && memcmp(t, "NOQUEUE", 7) == 0;
    int id = head && !noqueue && ((hex && len >= 5 && len <= 20) || (len >= 12 && len <= 20));
    if (id) {
        put(qid, line, t, t, (int32_t)len);
        *qid_ok = 1;
    }
    if (id || noqueue) b = r + 2;
    put(body, line, b, t, (int32_t)(end - b));
    uint8_t k = 0;
    for (size_t i = 0; i < sizeof postfix_leads / sizeof postfix_leads[0] && !k && b < end; i++)
        if (*b == (uint8_t)postfix_leads[i].lead[0] && starts(b, end, postfix_leads[i].lead)) k = postfix_leads[i].kind;
    if (!k && dsn_lead(b, end)) k = 9;
    if (k == 2 && find(b, end, ", status=expired")) k = 10;
    return k;
}

PyObject *postfix_heads(PyObject *self, PyObject *args) {
    (void)self;
    return heads(args, postfix_head, "postfix_heads");
}

/* postfix_to(views, bufs, out, ok) -> None
 * The fields of Postfix to= bodies, as views out[field][row] (ok = 0: null): 0 recipient
 * (^to=<?([^,>]*)>?,), 1 relay (after ", relay=" up to ","), 2 status (the word after
 * ", status=" when it is [a-z-]+), 3 detail (what the parentheses after that word hold, when
 * they end the line). */
PyObject *postfix_to(PyObject *self, PyObject *args) {
    static const int width[] = {4 * 16, 4};
    rows_t r;
    (void)self;
    if (rows_open(&r, args, 2, width, 2, "postfix_to") < 0) return NULL;
    view_t *out = ROWS_OUT(&r, 0);
    uint8_t *ok = ROWS_OUT(&r, 1);
    Py_ssize_t n = r.n;
    memset(out, 0, (size_t)(4 * n * 16));
    memset(ok, 0, (size_t)(4 * n));
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < n; j++) {
        const view_t *line = &r.views[j];
        const uint8_t *t = text_of(line, r.bufs), *end = t + line->len, *p, *q;
        prefetch_text(r.views, j, r.n, r.bufs);
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
            p += 9; /* the word, up to a space or the end */
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
    rows_close(&r);
    Py_RETURN_NONE;
}

/* relay_fields(views, bufs, host, host_ok, ip, ip_ok) -> bool
 * fields.host_of and ip_of of relays ("host [1.2.3.4]", "host[1.2.3.4]:25",
 * "[IPv6:2001:db8::1]"): the host is what precedes the first space or '[' (one final dot left
 * out), the address what the first "[...]" of [0-9A-Fa-f:.] (after IPv6: or ipv6:) holds.
 * False when some relay is not ASCII or its host has a capital (host_of lower-cases it). */
PyObject *relay_fields(PyObject *self, PyObject *args) {
    static const int width[] = {16, 1, 16, 1};
    rows_t r;
    int ok = 1;
    (void)self;
    if (rows_open(&r, args, 2, width, 4, "relay_fields") < 0) return NULL;
    view_t *host = ROWS_OUT(&r, 0), *ip = ROWS_OUT(&r, 2);
    uint8_t *host_ok = ROWS_OUT(&r, 1), *ip_ok = ROWS_OUT(&r, 3);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < r.n && ok; j++) {
        const view_t *line = &r.views[j];
        const uint8_t *t = text_of(line, r.bufs), *end = t + line->len, *p;
        prefetch_text(r.views, j, r.n, r.bufs);
        memset(&host[j], 0, 16); memset(&ip[j], 0, 16);
        host_ok[j] = ip_ok[j] = 0;
        for (p = t; p < end && !is_space(*p) && *p != '['; p++) {
            if (*p >= 0x80 || (*p >= 'A' && *p <= 'Z')) { ok = 0; break; }
        }
        if (!ok) break;
        if (p > t) {
            const uint8_t *he = (p[-1] == '.') ? p - 1 : p;
            put(&host[j], line, t, t, (int32_t)(he - t));
            host_ok[j] = 1;
        }
        for (; p < end; p++) {
            if (*p >= 0x80) { ok = 0; break; }
            if (*p != '[' || ip_ok[j]) continue;
            const uint8_t *a = p + 1;
            if (starts(a, end, "IPv6:") || starts(a, end, "ipv6:")) a += 5;
            const uint8_t *ae = a;
            while (ae < end && is_addr_char(*ae)) ae++;
            if (ae > a && ae < end && *ae == ']') { put(&ip[j], line, a, t, (int32_t)(ae - a)); ip_ok[j] = 1; }
        }
    }
    Py_END_ALLOW_THREADS
    rows_close(&r);
    return PyBool_FromLong(ok);
}
