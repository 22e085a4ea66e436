/* summaryd._ringscan: the consumer's record loop of Ring.read_batch (sdk/ring.py) in C.
 *
 * scan(region, o, pos, head, checked, view_above, starts, payloads) -> int
 *
 * Walks the records of `region` (a bytes copy of the ring from position
 * `pos`) from offset `o` and, for every record read_batch's Python loop would
 * accept as a plain bytes payload (nonzero length, ends at or before `head`,
 * whole in the region, at most `view_above` bytes, CRC-32 of its first
 * `checked` bytes equal to its header's), appends its position to `starts`
 * and a bytes copy of its payload to `payloads`.  Returns the offset of the
 * first record it did not take: the region's end, or a record the Python loop
 * then looks at itself (a corrupt one, a large one, one cut by the region's
 * end).  So the C code decides nothing the Python code does not decide the
 * same way, and a test runs both over the same rings.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static uint32_t crc_table[8][256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
}

/* zlib's crc32(data) (CRC-32, ISO-HDLC), slicing by eight. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        c = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^ crc_table[5][(lo >> 16) & 0xFF] ^
            crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^
            crc_table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--) c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xFF];
    return c ^ 0xFFFFFFFFu;
}

static inline uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static PyObject *scan(PyObject *Py_UNUSED(self), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError, "scan() takes 8 arguments");
        return NULL;
    }
    PyObject *region = args[0], *starts = args[6], *payloads = args[7];
    if (!PyBytes_CheckExact(region) || !PyList_CheckExact(starts) || !PyList_CheckExact(payloads)) {
        PyErr_SetString(PyExc_TypeError, "scan(bytes, int, int, int, int, int, list, list)");
        return NULL;
    }
    Py_ssize_t o = PyLong_AsSsize_t(args[1]);
    unsigned long long pos = PyLong_AsUnsignedLongLong(args[2]);
    unsigned long long head = PyLong_AsUnsignedLongLong(args[3]);
    Py_ssize_t checked = PyLong_AsSsize_t(args[4]);
    Py_ssize_t view_above = PyLong_AsSsize_t(args[5]);
    if (PyErr_Occurred()) return NULL;
    const uint8_t *b = (const uint8_t *)PyBytes_AS_STRING(region);
    Py_ssize_t size = PyBytes_GET_SIZE(region);
    if (o < 0) o = size;
    while (o + 8 <= size) {
        uint32_t n = le32(b + o);
        Py_ssize_t end = (o + 8 + (Py_ssize_t)n + 7) & ~(Py_ssize_t)7;
        if (n == 0 || pos + (unsigned long long)end > head || end > size || (Py_ssize_t)n > view_above) break;
        size_t covered = (Py_ssize_t)n <= checked ? n : (size_t)checked;
        if (crc32_ieee(b + o + 8, covered) != le32(b + o + 4)) break;
        PyObject *start = PyLong_FromUnsignedLongLong(pos + (unsigned long long)o);
        PyObject *payload = PyBytes_FromStringAndSize((const char *)b + o + 8, n);
        if (!start || !payload || PyList_Append(starts, start) || PyList_Append(payloads, payload)) {
            Py_XDECREF(start);
            Py_XDECREF(payload);
            return NULL;
        }
        Py_DECREF(start);
        Py_DECREF(payload);
        o = end;
    }
    return PyLong_FromSsize_t(o);
}

static PyObject *py_crc32(PyObject *Py_UNUSED(self), PyObject *arg) {
    Py_buffer v;
    if (PyObject_GetBuffer(arg, &v, PyBUF_SIMPLE) < 0) return NULL;
    uint32_t c = crc32_ieee(v.buf, (size_t)v.len);
    PyBuffer_Release(&v);
    return PyLong_FromUnsignedLong(c);
}

static PyMethodDef methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "scan(region, o, pos, head, checked, view_above, starts, payloads) -> offset; see sdk/ring.py."},
    {"crc32", py_crc32, METH_O, "crc32(data) -> int: zlib.crc32(data)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ringscan", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__ringscan(void) {
    crc_init();
    return PyModule_Create(&module);
}
