/* deploy.safety._native: NativeCritic (critic.c) and NativeFilter (filter.c). Built by setup.py;
 * optional: without it the filter and the critic run in Python and onnxruntime. */
#include "native.h"

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_native",
    .m_doc = "The safety filter's tick and the critic's selection graph in C.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&NativeCriticType) < 0 || PyType_Ready(&NativeFilterType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&NativeCriticType);
    Py_INCREF(&NativeFilterType);
    if (PyModule_AddObject(m, "NativeCritic", (PyObject *)&NativeCriticType) < 0 ||
        PyModule_AddObject(m, "NativeFilter", (PyObject *)&NativeFilterType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
