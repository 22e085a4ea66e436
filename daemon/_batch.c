/* summaryd.daemon._batch: the scalar/text hot path of the daemon in C.
 *
 * encode_batch(payloads) walks ring record payloads (msgpack, see sdk/wire.py)
 * and turns every SCALAR, SCALAR_T and TEXT record of the usual shape into
 * its framed TFRecord (daemon/tfrecord.py) holding the Event the Python
 * encoders in daemon/encode.py build, byte for byte (a Hypothesis test in
 * tests/unit/test_batch.py compares the two).  Everything else (another kind,
 * an unusual encoding, a value the Python encoder would refuse or treat
 * specially) is *declined*: left for the caller's per-record Python path, which
 * decodes, validates and refuses it exactly as before.  So this file never
 * raises for a record and never decides a refusal: it only takes the easy,
 * common cases off the Python path.
 *
 * Result: a list of runs (wid, first, count, data, tags) covering every
 * payload in order.  data is None for a run of declined records (wid and tags
 * None too); otherwise the run holds `count` consecutive records of one writer
 * `wid` (an int), data is their framed events joined, tags the distinct tags
 * (record item 2) in order of first appearance.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define SCALAR 3
#define SCALAR_T 4
#define TEXT 5

/* ---- CRC32C (Castagnoli), as the crc32c package computes it ------------ */

static uint32_t crc_table[8][256];
static int have_sse42;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    have_sse42 = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n) {
    while (n >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        c = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^ crc_table[5][(lo >> 16) & 0xFF] ^
            crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
            crc_table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--) c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xFF];
    return c;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t n) {
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n--) c = __builtin_ia32_crc32qi(c, *p++);
    return c;
}
#endif

static uint32_t crc32c(const uint8_t *p, size_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (have_sse42) return crc_hw(0xFFFFFFFFu, p, n) ^ 0xFFFFFFFFu;
#endif
    return crc_sw(0xFFFFFFFFu, p, n) ^ 0xFFFFFFFFu;
}

static uint32_t masked(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xA282EAD8u; }

/* ---- output buffer -------------------------------------------------------- */

typedef struct {
    uint8_t *b;
    size_t len, cap;
} buf_t;

static int reserve(buf_t *o, size_t extra) {
    if (o->len + extra <= o->cap) return 0;
    size_t cap = o->cap ? o->cap : 1 << 16;
    while (cap < o->len + extra) cap *= 2;
    uint8_t *b = PyMem_Realloc(o->b, cap);
    if (!b) {
        PyErr_NoMemory();
        return -1;
    }
    o->b = b;
    o->cap = cap;
    return 0;
}

static inline uint8_t *put_varint(uint8_t *q, uint64_t v) {
    while (v > 0x7F) {
        *q++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *q++ = (uint8_t)v;
    return q;
}

static inline size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v > 0x7F) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline void put_le64(uint8_t *q, uint64_t v) {
    for (int i = 0; i < 8; i++) q[i] = (uint8_t)(v >> (8 * i));
}

static inline void put_le32(uint8_t *q, uint32_t v) {
    for (int i = 0; i < 4; i++) q[i] = (uint8_t)(v >> (8 * i));
}

/* ---- msgpack items (only the forms ring records use) ---------------------- */

enum { T_NIL, T_BOOL, T_INT, T_FLOAT, T_STR, T_OTHER };

typedef struct {
    int t;
    int64_t i; /* T_INT (int64 range only), T_BOOL */
    double d;  /* T_FLOAT */
    const uint8_t *s;
    uint32_t n; /* T_STR */
} item_t;

static inline uint64_t be(const uint8_t *p, int w) {
    uint64_t v = 0;
    for (int k = 0; k < w; k++) v = v << 8 | p[k];
    return v;
}

/* One item at *pp (bounded by end): 0, or -1 when truncated or of a form we leave to Python. */
static int read_item(const uint8_t **pp, const uint8_t *end, item_t *it) {
    const uint8_t *p = *pp;
    if (p >= end) return -1;
    uint8_t c = *p++;
    int w = 0;
    it->t = T_OTHER;
    if (c <= 0x7F) {
        it->t = T_INT;
        it->i = c;
    } else if (c >= 0xE0) {
        it->t = T_INT;
        it->i = (int8_t)c;
    } else if (c >= 0xA0 && c <= 0xBF) {
        it->t = T_STR;
        it->n = c & 0x1F;
    } else {
        switch (c) {
        case 0xC0: it->t = T_NIL; break;
        case 0xC2: it->t = T_BOOL; it->i = 0; break;
        case 0xC3: it->t = T_BOOL; it->i = 1; break;
        case 0xCA: {
            if (end - p < 4) return -1;
            uint32_t u = (uint32_t)be(p, 4);
            float f;
            memcpy(&f, &u, 4);
            it->t = T_FLOAT;
            it->d = f;
            p += 4;
            break;
        }
        case 0xCB: {
            if (end - p < 8) return -1;
            uint64_t u = be(p, 8);
            memcpy(&it->d, &u, 8);
            it->t = T_FLOAT;
            p += 8;
            break;
        }
        case 0xCC: w = 1; goto uint;
        case 0xCD: w = 2; goto uint;
        case 0xCE: w = 4; goto uint;
        case 0xCF: w = 8;
        uint:
            if (end - p < w) return -1;
            {
                uint64_t u = be(p, w);
                if (u > (uint64_t)INT64_MAX) return -1;
                it->t = T_INT;
                it->i = (int64_t)u;
            }
            p += w;
            break;
        case 0xD0: if (end - p < 1) return -1; it->t = T_INT; it->i = (int8_t)p[0]; p += 1; break;
        case 0xD1: if (end - p < 2) return -1; it->t = T_INT; it->i = (int16_t)be(p, 2); p += 2; break;
        case 0xD2: if (end - p < 4) return -1; it->t = T_INT; it->i = (int32_t)be(p, 4); p += 4; break;
        case 0xD3: if (end - p < 8) return -1; it->t = T_INT; it->i = (int64_t)be(p, 8); p += 8; break;
        case 0xD9: w = 1; goto str;
        case 0xDA: w = 2; goto str;
        case 0xDB: w = 4;
        str:
            if (end - p < w) return -1;
            it->t = T_STR;
            it->n = (uint32_t)be(p, w);
            p += w;
            break;
        default: return -1;
        }
    }
    if (it->t == T_STR) {
        if ((size_t)(end - p) < it->n) return -1;
        it->s = p;
        p += it->n;
    }
    *pp = p;
    return 0;
}

/* ---- tags: str objects cached by their UTF-8 bytes ------------------------ */

#define TAG_SLOTS 512
#define TAG_CACHED_MAX 256

typedef struct {
    uint8_t *bytes;
    uint32_t n;
    PyObject *str;
} tag_slot;

static tag_slot tags[TAG_SLOTS];

/* A new reference to the str the bytes decode to; NULL (no error set) if not strict UTF-8. */
static PyObject *tag_str(const uint8_t *s, uint32_t n) {
    uint32_t h = 2166136261u;
    for (uint32_t k = 0; k < n; k++) h = (h ^ s[k]) * 16777619u;
    tag_slot *e = &tags[h % TAG_SLOTS];
    if (e->str && e->n == n && memcmp(e->bytes, s, n) == 0) {
        Py_INCREF(e->str);
        return e->str;
    }
    PyObject *str = PyUnicode_DecodeUTF8((const char *)s, n, "strict");
    if (!str) {
        PyErr_Clear();
        return NULL;
    }
    if (n <= TAG_CACHED_MAX) {
        uint8_t *copy = PyMem_Malloc(n ? n : 1);
        if (copy) {
            memcpy(copy, s, n);
            PyMem_Free(e->bytes);
            Py_XDECREF(e->str);
            e->bytes = copy;
            e->n = n;
            Py_INCREF(str);
            e->str = str;
        }
    }
    return str;
}

static int valid_utf8(const uint8_t *s, uint32_t n) {
    for (uint32_t k = 0; k < n; k++)
        if (s[k] & 0x80) goto slow;
    return 1;
slow: {
    PyObject *str = PyUnicode_DecodeUTF8((const char *)s, n, "strict");
    if (!str) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(str);
    return 1;
}
}

/* ---- one record ------------------------------------------------------------ */

typedef struct {
    int64_t wid;
    PyObject *tag; /* new reference */
} taken_t;

static const uint8_t TEXT_SUFFIX[] = "/text_summary";
static const uint8_t TEXT_TENSOR_HEAD[] = {0x08, 0x07, 0x12, 0x04, 0x12, 0x02, 0x08, 0x01, 0x42};
static const uint8_t TEXT_META[] = {0x4A, 0x08, 0x0A, 0x06, 0x0A, 0x04, 't', 'e', 'x', 't'};
static const uint8_t SCALARS_META[] = {0x4A, 0x0B, 0x0A, 0x09, 0x0A, 0x07, 's', 'c', 'a', 'l', 'a', 'r', 's'};

/* Appends the framed Event for one record to o: 1 taken, 0 declined (o unchanged), -1 error. */
static int take(const uint8_t *p, size_t n, buf_t *o, taken_t *out) {
    const uint8_t *end = p + n;
    if (n < 2) return 0;
    int fields = p[0] - 0x90;
    int kind = p[1];
    if (!((kind == SCALAR && fields == 6) || (kind == TEXT && fields == 6) || (kind == SCALAR_T && fields == 7)))
        return 0;
    p += 2;
    item_t wid, tag, val, step, wall, dbl;
    if (read_item(&p, end, &wid) || wid.t != T_INT) return 0;
    if (read_item(&p, end, &tag) || tag.t != T_STR) return 0;
    if (read_item(&p, end, &val) || read_item(&p, end, &step) || read_item(&p, end, &wall)) return 0;
    if (kind == SCALAR_T && (read_item(&p, end, &dbl) || dbl.t != T_BOOL)) return 0;
    if (p != end) return 0; /* trailing bytes: msgpack refuses them */
    if (step.t != T_NIL && step.t != T_INT) return 0;
    if (wall.t == T_INT) {
        wall.t = T_FLOAT;
        wall.d = (double)wall.i;
    }
    if (wall.t != T_FLOAT) return 0;
    uint64_t wall_bits;
    memcpy(&wall_bits, &wall.d, 8);
    uint64_t step_v = step.t == T_INT ? (uint64_t)step.i : 0;
    /* Summary.Value contents after the tag field, and the tag field's bytes. */
    size_t body_len; /* bytes of Value after the tag field */
    uint32_t tag_n = tag.n + (kind == TEXT ? (uint32_t)(sizeof TEXT_SUFFIX - 1) : 0);
    size_t tensor_len = 0;
    float f32 = 0;
    if (kind == TEXT) {
        if (val.t != T_STR || !valid_utf8(val.s, val.n)) return 0;
        tensor_len = sizeof TEXT_TENSOR_HEAD + varint_len(val.n) + val.n;
        body_len = 1 + varint_len(tensor_len) + tensor_len + sizeof TEXT_META;
    } else {
        if (val.t == T_INT) {
            val.t = T_FLOAT;
            val.d = (double)val.i;
        }
        if (val.t != T_FLOAT || val.d != val.d) return 0; /* NaN: payload bits are Python's business */
        f32 = (float)val.d;
        if (kind == SCALAR) {
            body_len = 5;
        } else {
            tensor_len = dbl.i ? 12 : 8;
            body_len = 1 + 1 + tensor_len + sizeof SCALARS_META;
        }
    }
    /* torch's Events leave wall_time out when it is +0.0 (proto3); the hand-written
       scalar encoder always writes it. */
    int with_wall = kind == SCALAR || wall_bits != 0;
    size_t tag_field = tag_n ? 1 + varint_len(tag_n) + tag_n : 0;
    size_t value_len = tag_field + body_len;
    size_t summary_len = 1 + varint_len(value_len) + value_len;
    size_t ev_len = (with_wall ? 9 : 0) + (step_v ? 1 + varint_len(step_v) : 0) + 1 + varint_len(summary_len) +
                    summary_len;
    PyObject *tag_obj = tag_str(tag.s, tag.n);
    if (!tag_obj) return 0;
    if (reserve(o, ev_len + 16)) {
        Py_DECREF(tag_obj);
        return -1;
    }
    uint8_t *h = o->b + o->len;
    uint8_t *q = h + 12;
    if (with_wall) {
        *q++ = 0x09;
        put_le64(q, wall_bits);
        q += 8;
    }
    if (step_v) {
        *q++ = 0x10;
        q = put_varint(q, step_v);
    }
    *q++ = 0x2A;
    q = put_varint(q, summary_len);
    *q++ = 0x0A;
    q = put_varint(q, value_len);
    if (tag_n) {
        *q++ = 0x0A;
        q = put_varint(q, tag_n);
        memcpy(q, tag.s, tag.n);
        q += tag.n;
        if (kind == TEXT) {
            memcpy(q, TEXT_SUFFIX, sizeof TEXT_SUFFIX - 1);
            q += sizeof TEXT_SUFFIX - 1;
        }
    }
    if (kind == SCALAR) {
        *q++ = 0x15;
        memcpy(q, &f32, 4); /* little-endian hosts only: checked at import */
        q += 4;
    } else if (kind == SCALAR_T) {
        *q++ = 0x42;
        *q++ = (uint8_t)tensor_len;
        if (dbl.i) {
            *q++ = 0x08, *q++ = 0x02, *q++ = 0x32, *q++ = 0x08;
            memcpy(q, &val.d, 8);
            q += 8;
        } else {
            *q++ = 0x08, *q++ = 0x01, *q++ = 0x2A, *q++ = 0x04;
            memcpy(q, &f32, 4);
            q += 4;
        }
        memcpy(q, SCALARS_META, sizeof SCALARS_META);
        q += sizeof SCALARS_META;
    } else {
        *q++ = 0x42;
        q = put_varint(q, tensor_len);
        memcpy(q, TEXT_TENSOR_HEAD, sizeof TEXT_TENSOR_HEAD);
        q += sizeof TEXT_TENSOR_HEAD;
        q = put_varint(q, val.n);
        memcpy(q, val.s, val.n);
        q += val.n;
        memcpy(q, TEXT_META, sizeof TEXT_META);
        q += sizeof TEXT_META;
    }
    /* TFRecord: u64 length, masked crc32c of it, data, masked crc32c of the data. */
    put_le64(h, ev_len);
    put_le32(h + 8, masked(crc32c(h, 8)));
    put_le32(q, masked(crc32c(h + 12, ev_len)));
    o->len += 12 + ev_len + 4;
    out->wid = wid.i;
    out->tag = tag_obj;
    return 1;
}

/* ---- the batch -------------------------------------------------------------- */

typedef struct {
    int open;       /* a run of taken records is being gathered */
    int64_t wid;
    Py_ssize_t first, count;
    PyObject *tags; /* list */
    PyObject *seen; /* set, once the list is long */
} run_t;

static int emit(PyObject *result, PyObject *wid, Py_ssize_t first, Py_ssize_t count, PyObject *data,
                PyObject *tags) {
    PyObject *t = Py_BuildValue("(NnnNN)", wid, first, count, data, tags);
    if (!t) return -1;
    int r = PyList_Append(result, t);
    Py_DECREF(t);
    return r;
}

/* Emits the open run (its data is o's first `upto` bytes) and keeps o's bytes after it. */
static int close_run(PyObject *result, run_t *r, buf_t *o, size_t upto) {
    if (!r->open) return 0;
    r->open = 0;
    PyObject *data = PyBytes_FromStringAndSize((const char *)o->b, (Py_ssize_t)upto);
    PyObject *tags = PyList_AsTuple(r->tags);
    PyObject *wid = PyLong_FromLongLong(r->wid);
    Py_CLEAR(r->tags);
    Py_CLEAR(r->seen);
    if (!data || !tags || !wid) {
        Py_XDECREF(data);
        Py_XDECREF(tags);
        Py_XDECREF(wid);
        return -1;
    }
    memmove(o->b, o->b + upto, o->len - upto);
    o->len -= upto;
    return emit(result, wid, r->first, r->count, data, tags);
}

static int add_tag(run_t *r, PyObject *tag) {
    Py_ssize_t n = PyList_GET_SIZE(r->tags);
    if (n && PyList_GET_ITEM(r->tags, n - 1) == tag) return 0;
    if (!r->seen) {
        for (Py_ssize_t k = 0; k < n; k++)
            if (PyList_GET_ITEM(r->tags, k) == tag) return 0;
        /* An equal str that is another object (its cache slot was reused). */
        for (Py_ssize_t k = 0; k < n; k++) {
            int eq = PyUnicode_Compare(PyList_GET_ITEM(r->tags, k), tag);
            if (eq == 0) return 0;
            if (eq == -1 && PyErr_Occurred()) return -1;
        }
        if (n < 16) return PyList_Append(r->tags, tag);
        r->seen = PySet_New(r->tags);
        if (!r->seen) return -1;
    }
    int has = PySet_Contains(r->seen, tag);
    if (has) return has < 0 ? -1 : 0;
    if (PySet_Add(r->seen, tag) < 0) return -1;
    return PyList_Append(r->tags, tag);
}

static PyObject *encode_batch(PyObject *Py_UNUSED(self), PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "payloads must be a sequence");
    if (!seq) return NULL;
    Py_ssize_t total = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *result = PyList_New(0);
    buf_t o = {NULL, 0, 0};
    run_t r = {0};
    Py_ssize_t slow_first = -1; /* start of an open run of declined records */
    if (!result) goto fail;
    for (Py_ssize_t i = 0; i < total; i++) {
        Py_buffer view;
        const uint8_t *p;
        Py_ssize_t n;
        int have_view = 0;
        if (PyBytes_CheckExact(items[i])) {
            p = (const uint8_t *)PyBytes_AS_STRING(items[i]);
            n = PyBytes_GET_SIZE(items[i]);
        } else {
            if (PyObject_GetBuffer(items[i], &view, PyBUF_SIMPLE) < 0) goto fail;
            have_view = 1;
            p = view.buf;
            n = view.len;
        }
        size_t before = o.len;
        taken_t t;
        int got = take(p, (size_t)n, &o, &t);
        if (have_view) PyBuffer_Release(&view);
        if (got < 0) goto fail;
        if (got == 0) {
            if (close_run(result, &r, &o, o.len) < 0) goto fail;
            if (slow_first < 0) slow_first = i;
            continue;
        }
        if (slow_first >= 0) {
            Py_INCREF(Py_None), Py_INCREF(Py_None), Py_INCREF(Py_None);
            if (emit(result, Py_None, slow_first, i - slow_first, Py_None, Py_None) < 0) {
                Py_DECREF(t.tag);
                goto fail;
            }
            slow_first = -1;
        }
        if (r.open && r.wid != t.wid) {
            if (close_run(result, &r, &o, before) < 0) {
                Py_DECREF(t.tag);
                goto fail;
            }
        }
        if (!r.open) {
            r.open = 1;
            r.wid = t.wid;
            r.first = i;
            r.count = 0;
            r.tags = PyList_New(0);
            if (!r.tags) {
                Py_DECREF(t.tag);
                goto fail;
            }
        }
        r.count++;
        int bad = add_tag(&r, t.tag);
        Py_DECREF(t.tag);
        if (bad < 0) goto fail;
    }
    if (close_run(result, &r, &o, o.len) < 0) goto fail;
    if (slow_first >= 0) {
        Py_INCREF(Py_None), Py_INCREF(Py_None), Py_INCREF(Py_None);
        if (emit(result, Py_None, slow_first, total - slow_first, Py_None, Py_None) < 0) goto fail;
    }
    PyMem_Free(o.b);
    Py_DECREF(seq);
    return result;
fail:
    Py_XDECREF(r.tags);
    Py_XDECREF(r.seen);
    PyMem_Free(o.b);
    Py_XDECREF(result);
    Py_DECREF(seq);
    return NULL;
}

static PyObject *py_crc32c(PyObject *Py_UNUSED(self), PyObject *arg) {
    Py_buffer v;
    if (PyObject_GetBuffer(arg, &v, PyBUF_SIMPLE) < 0) return NULL;
    uint32_t c = crc32c(v.buf, (size_t)v.len);
    PyBuffer_Release(&v);
    return PyLong_FromUnsignedLong(c);
}

static PyMethodDef methods[] = {
    {"encode_batch", encode_batch, METH_O,
     "encode_batch(payloads) -> list of (wid, first, count, data, tags) runs; see daemon/batch.py."},
    {"crc32c", py_crc32c, METH_O, "crc32c(data) -> int: CRC-32C, as the crc32c package computes it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_batch", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__batch(void) {
    const uint16_t one = 1;
    if (*(const uint8_t *)&one != 1) {
        PyErr_SetString(PyExc_ImportError, "summaryd.daemon._batch assumes a little-endian host");
        return NULL;
    }
    crc_init();
    return PyModule_Create(&module);
}
