/* The mmw_tasks.parse._kernels module: its functions (lines.c, mail.c, sendmail.c, exim.c) and the argument helper. */
#include "views.h"

int rows_open(rows_t *r, PyObject *args, int first, const int *width, int nout, const char *name) {
    memset(r, 0, sizeof *r);
    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) < first + nout || nout > 8) {
        PyErr_Format(PyExc_TypeError, "%s: %d arguments expected", name, first + nout);
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(args, i), &r->in[i], PyBUF_SIMPLE) < 0) {
            rows_close(r);
            return -1;
        }
        r->opened = i + 1;
    }
    for (int i = 0; i < nout; i++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(args, first + i), &r->out[i], PyBUF_WRITABLE) < 0) {
            rows_close(r);
            return -1;
        }
        r->nout = i + 1;
    }
    if (r->in[0].len % 16) {
        PyErr_Format(PyExc_ValueError, "%s: views of 16 bytes expected", name);
        rows_close(r);
        return -1;
    }
    r->n = r->in[0].len / 16;
    for (int i = 0; i < nout; i++)
        if (r->out[i].len < r->n * width[i]) {
            PyErr_Format(PyExc_ValueError, "%s: output %d holds fewer than %d bytes per line", name, i, width[i]);
            rows_close(r);
            return -1;
        }
    r->views = r->in[0].buf;
    r->bufs = r->in[1].buf;
    return 0;
}

void rows_close(rows_t *r) {
    for (int i = 0; i < r->opened; i++) PyBuffer_Release(&r->in[i]);
    for (int i = 0; i < r->nout; i++) PyBuffer_Release(&r->out[i]);
    r->opened = r->nout = 0;
}

static PyMethodDef methods[] = {
    {"count_lines", count_lines, METH_VARARGS, "The number of newlines in a buffer."},
    {"line_views", line_views, METH_VARARGS, "Arrow views of a buffer's lines."},
    {"scan_runs", scan_runs, METH_VARARGS, "Mark the lines that begin a run of equal stamp keys."},
    {"scan_headers", scan_headers, METH_VARARGS, "Split syslog headers into host, tag and message views."},
    {"bsd_stamps", bsd_stamps, METH_VARARGS, "The month, day and seconds of the day of BSD stamps."},
    {"all_ascii", all_ascii, METH_VARARGS, "Whether every byte of every string is ASCII."},
    {"utf8_lines", utf8_lines, METH_VARARGS, "Which strings are valid UTF-8."},
    {"after_keys", after_keys, METH_VARARGS, "The text after each key, up to a stop byte."},
    {"pop_logins", pop_logins, METH_VARARGS, "POP/IMAP login kinds and the fields of their common forms."},
    {"sendmail_heads", sendmail_heads, METH_VARARGS, "sendmail queue ids, bodies and kinds."},
    {"sendmail_from", sendmail_from, METH_VARARGS, "The fields of sendmail from= lines of the common form."},
    {"sendmail_to", sendmail_to, METH_VARARGS, "The fields of sendmail to= lines of one delivered recipient."},
    {"sendmail_reject", sendmail_reject, METH_VARARGS, "The recipient and reason of sendmail's \"<addr>... reason\" lines."},
    {"postfix_heads", postfix_heads, METH_VARARGS, "Postfix queue ids, bodies and kinds."},
    {"postfix_to", postfix_to, METH_VARARGS, "The recipient, relay, status and detail of Postfix to= lines."},
    {"relay_fields", relay_fields, METH_VARARGS, "The host and address of relays."},
    {"exim_heads", exim_heads, METH_VARARGS, "Exim message ids, flags, bodies and kinds."},
    {"exim_fields", exim_fields, METH_VARARGS, "The fields of Exim arrival and delivery lines."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__kernels(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && (PyModule_AddIntConstant(m, "NEEDS_GENERAL", NEEDS_GENERAL) < 0
              || PyModule_AddIntConstant(m, "MAY_REPEAT", MAY_REPEAT) < 0
              || PyModule_AddIntConstant(m, "POP_CASED", POP_CASED) < 0
              || PyModule_AddIntConstant(m, "POP_MAPPED", POP_MAPPED) < 0)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
