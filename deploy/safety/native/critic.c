/* The critic's selection graph (deploy/export/critic_graph.py) as one allocation-free C call.
 *
 * deploy/safety/native_critic.py reads the graph's initializers from critic.onnx, checks that the
 * graph is the selection graph node for node, and hands the weights to NativeCritic; it then
 * checks this evaluator against onnxruntime on random inputs before the filter may use it.
 *
 *   candidates = mix @ anchors + offsets                         (K, n)
 *   features   = clip((rel_mix @ anchors + offsets) * inv_scale)  (K, n)
 *   h          = relu(obs @ w1_obs + b1 + features @ w1_act)    (K, 2H), the twins side by side
 *   h          = relu(h @ w_i + b_i)                             per hidden layer (block-diagonal)
 *   risk       = sigmoid(max over the twins of w_out_t @ h + b_out)
 *   choice     = first candidate with risk + margin <= threshold, else the least risky
 *
 * Everything is float32 in the order onnxruntime's kernels sum, so the two agree to ~1e-6.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "native.h"

static int copy_floats(PyObject *obj, Py_ssize_t want, float **dst, const char *name) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view.itemsize != 4 || !format_is(view.format, 'f') ||
        view.len != want * 4) {
        PyErr_Format(PyExc_ValueError, "NativeCritic: %s must be %zd contiguous float32 values",
                     name, want);
        PyBuffer_Release(&view);
        return -1;
    }
    *dst = (float *)malloc((size_t)view.len);
    if (*dst == NULL) {
        PyBuffer_Release(&view);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(*dst, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return 0;
}

static void critic_dealloc(NativeCritic *self) {
    free(self->mix); free(self->rel_mix); free(self->offsets); free(self->inv_scale);
    free(self->w1_obs); free(self->b1); free(self->w1_act);
    for (int i = 0; i < MAX_LAYERS; i++) { free(self->wh[i]); free(self->bh[i]); }
    free(self->w_out_t); free(self->b_out); free(self->accept_key); free(self->margin);
    free(self->obs);
    free(self->scratch);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* NativeCritic(k, n, d, w, pos_offset, mix, rel_mix, offsets, inv_scale, clip_lo, clip_hi, w1_obs, b1,
 *              w1_act, hidden: list of (w, b), w_out_t, b_out, accept_key, margin) */
static int critic_init(NativeCritic *self, PyObject *args, PyObject *Py_UNUSED(kwds)) {
    int k, n, d, w, pos;
    PyObject *mix, *rel, *off, *inv, *w1o, *b1, *w1a, *hidden, *wout, *bout, *key, *margin;
    float lo, hi;
    if (self->scratch != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "NativeCritic: already initialized");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "iiiiiOOOOffOOOO!OOOO", &k, &n, &d, &w, &pos, &mix, &rel, &off, &inv,
                          &lo, &hi, &w1o, &b1, &w1a, &PyList_Type, &hidden, &wout, &bout, &key,
                          &margin))
        return -1;
    if (k < 1 || n < 1 || d < 1 || w < 32 || w % 32 != 0 || pos < 0 || pos + n > d) {
        PyErr_SetString(PyExc_ValueError,
                        "NativeCritic: sizes must be >= 1, the twins' width a multiple of 32 "
                        "and joint_pos inside the observation");
        return -1;
    }
    Py_ssize_t layers = PyList_GET_SIZE(hidden);
    if (layers > MAX_LAYERS) {
        PyErr_Format(PyExc_ValueError, "NativeCritic: at most %d hidden layers", MAX_LAYERS);
        return -1;
    }
    self->k = k; self->n = n; self->d = d; self->w = w; self->layers = (int)layers;
    self->pos_offset = pos;
    self->clip_lo = lo; self->clip_hi = hi;
    if (copy_floats(mix, (Py_ssize_t)k * 3, &self->mix, "mix") < 0 ||
        copy_floats(rel, (Py_ssize_t)k * 3, &self->rel_mix, "rel_mix") < 0 ||
        copy_floats(off, (Py_ssize_t)k * n, &self->offsets, "offsets") < 0 ||
        copy_floats(inv, n, &self->inv_scale, "inv_scale") < 0 ||
        copy_floats(w1o, (Py_ssize_t)d * w, &self->w1_obs, "w1_obs") < 0 ||
        copy_floats(b1, w, &self->b1, "b1") < 0 ||
        copy_floats(w1a, (Py_ssize_t)n * w, &self->w1_act, "w1_act") < 0 ||
        copy_floats(wout, 2 * (Py_ssize_t)w, &self->w_out_t, "w_out_t") < 0 ||
        copy_floats(bout, 2, &self->b_out, "b_out") < 0 ||
        copy_floats(key, k, &self->accept_key, "accept_key") < 0 ||
        copy_floats(margin, k, &self->margin, "switch_margin") < 0)
        return -1;
    for (Py_ssize_t i = 0; i < layers; i++) {
        PyObject *pair = PyList_GET_ITEM(hidden, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_ValueError, "NativeCritic: hidden layers are (w, b) tuples");
            return -1;
        }
        if (copy_floats(PyTuple_GET_ITEM(pair, 0), (Py_ssize_t)w * w / 2, &self->wh[i], "hidden w") < 0 ||
            copy_floats(PyTuple_GET_ITEM(pair, 1), w, &self->bh[i], "hidden b") < 0)
            return -1;
    }
    size_t floats = 3 * (size_t)n + 2 * (size_t)k * n + w + 2 * (size_t)k * w + k;
    self->obs = (float *)calloc((size_t)d, sizeof(float));
    self->scratch = (float *)calloc(floats, sizeof(float));
    if (self->obs == NULL || self->scratch == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

typedef float v8 __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

/* y (rows, w) = x (rows, in) @ m (in, w) + b (w,), then relu if asked; w a multiple of 16.
 * Blocks of 4 rows x 16 columns: 8 vector accumulators, one weight load per 4 multiply-adds.
 * Built for AVX2 + FMA and for plain x86-64, chosen when the module loads. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
static void dense(const float *x, int rows, int ldx, int in, const float *m, int ldm,
                  const float *b, int w, float *y, int ldy, int relu) {
    for (int r0 = 0; r0 < rows; r0 += 4) {
        const int nr = rows - r0 < 4 ? rows - r0 : 4;
        for (int c0 = 0; c0 < w; c0 += 16) {
            v8 acc[4][2];
            v8 b0, b1;
            memcpy(&b0, b + c0, 32);
            memcpy(&b1, b + c0 + 8, 32);
            for (int r = 0; r < 4; r++) { acc[r][0] = b0; acc[r][1] = b1; }
            for (int i = 0; i < in; i++) {
                v8 m0, m1;
                memcpy(&m0, m + (size_t)i * ldm + c0, 32);
                memcpy(&m1, m + (size_t)i * ldm + c0 + 8, 32);
                for (int r = 0; r < 4; r++) {
                    const float xv = r < nr ? x[(size_t)(r0 + r) * ldx + i] : 0.0f;
                    acc[r][0] += xv * m0;
                    acc[r][1] += xv * m1;
                }
            }
            for (int r = 0; r < nr; r++) {
                if (relu) {
                    const v8 zero = {0};
                    acc[r][0] = (v8)((v8i)acc[r][0] & (acc[r][0] > zero));
                    acc[r][1] = (v8)((v8i)acc[r][1] & (acc[r][1] > zero));
                }
                memcpy(y + (size_t)(r0 + r) * ldy + c0, &acc[r][0], 32);
                memcpy(y + (size_t)(r0 + r) * ldy + c0 + 8, &acc[r][1], 32);
            }
        }
    }
}

int read_floats(PyObject *obj, Py_ssize_t want, float *dst, const char *name, double *sum) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    const char *f = view.format;
    const int f64 = format_is(f, 'd') && view.len == want * 8;
    const int f32 = format_is(f, 'f') && view.len == want * 4;
    if (f64) {
        const double *src = (const double *)view.buf;
        double s = 0.0;  /* of the float32 values: 1e39 is inf there (no overflow in double) */
        for (Py_ssize_t i = 0; i < want; i++) {
            dst[i] = (float)src[i];
            s += (double)dst[i];
        }
        if (sum) *sum = s;
    } else if (f32) {
        memcpy(dst, view.buf, (size_t)want * 4);
        double s = 0.0;
        for (Py_ssize_t i = 0; i < want; i++) s += (double)dst[i];
        if (sum) *sum = s;
    } else {
        PyErr_Format(PyExc_ValueError,
                     "NativeCritic.run: %s must be %zd contiguous float64 or float32 values", name,
                     want);
    }
    const int ok = f64 || f32;
    PyBuffer_Release(&view);
    return ok ? 0 : -1;
}

int critic_eval(NativeCritic *self, const double *action, const double *hold, double threshold,
                double *chosen, double *risk_out) {
    const int k = self->k, n = self->n, d = self->d, w = self->w;
    float *anchors = self->scratch, *cand = anchors + 3 * n;
    float *feat = cand + (size_t)k * n, *oh = feat + (size_t)k * n;
    float *h = oh + w, *h2 = h + (size_t)k * w, *risk = h2 + (size_t)k * w;
    for (int j = 0; j < n; j++) {
        anchors[j] = (float)action[j];
        anchors[n + j] = (float)hold[j];
        anchors[2 * n + j] = self->obs[self->pos_offset + j];
    }
    for (int c = 0; c < k; c++) {
        const float *m = self->mix + 3 * c, *r = self->rel_mix + 3 * c;
        for (int j = 0; j < n; j++) {
            const float o = self->offsets[c * n + j];
            const float a0 = anchors[j], a1 = anchors[n + j], a2 = anchors[2 * n + j];
            cand[c * n + j] = m[0] * a0 + m[1] * a1 + m[2] * a2 + o;
            float f = (r[0] * a0 + r[1] * a1 + r[2] * a2 + o) * self->inv_scale[j];
            f = f < self->clip_lo ? self->clip_lo : f;
            feat[c * n + j] = f > self->clip_hi ? self->clip_hi : f;
        }
    }
    const int hw = w / 2;  /* one twin's width */
    dense(self->obs, 1, d, d, self->w1_obs, w, self->b1, w, oh, w, 0);
    dense(feat, k, n, n, self->w1_act, w, oh, w, h, w, 1);  /* the observation's share as bias */
    for (int i = 0; i < self->layers; i++) {
        for (int t = 0; t < 2; t++)  /* each twin's diagonal block */
            dense(h + t * hw, k, w, hw, self->wh[i] + (size_t)t * hw * hw, hw, self->bh[i] + t * hw,
                  hw, h2 + t * hw, w, 1);
        float *t = h; h = h2; h2 = t;
    }
    int choice = -1, least = 0;
    for (int c = 0; c < k; c++) {
        const float *hc = h + (size_t)c * w;
        float l0 = 0.0f, l1 = 0.0f;
        for (int j = 0; j < w; j++) {
            l0 += self->w_out_t[j] * hc[j];
            l1 += self->w_out_t[w + j] * hc[j];
        }
        l0 += self->b_out[0];
        l1 += self->b_out[1];
        const float mx = l0 > l1 ? l0 : l1;
        risk[c] = 1.0f / (1.0f + expf(-mx));
        const float judged = risk[c] + self->margin[c];
        if (choice < 0 && !(judged > (float)threshold)) choice = c;
        if (judged < risk[least] + self->margin[least]) least = c;
    }
    if (choice < 0) choice = least;
    for (int j = 0; j < n; j++) chosen[j] = cand[choice * n + j];
    for (int c = 0; c < k; c++) risk_out[c] = risk[c];
    return choice;
}

/* A writable contiguous float64 buffer of ``want`` values, or -1 with a ValueError. */
static int writable_doubles(PyObject *obj, Py_ssize_t want, Py_buffer *view, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0)
        return -1;
    if (!format_is(view->format, 'd') || view->len != want * 8) {
        PyErr_Format(PyExc_ValueError, "NativeCritic.run: %s must be %zd writable float64 values",
                     what, want);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* run(observation (D,), action (n,), hold (n,), threshold, chosen (n,) f64 out,
 *     risk (K,) f64 out) -> choice. Inputs are float64 or float32; the measured position (the
 * third anchor) is the observation's joint_pos field, at ``pos_offset``. */
static PyObject *critic_run(NativeCritic *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "NativeCritic.run takes 6 arguments");
        return NULL;
    }
    const int n = self->n;
    double action[n], hold[n];  /* n is small (joints) */
    float af[n], hf[n];
    const double threshold = PyFloat_AsDouble(args[3]);
    if (threshold == -1.0 && PyErr_Occurred()) return NULL;
    if (read_floats(args[0], self->d, self->obs, "observation", NULL) < 0 ||
        read_floats(args[1], n, af, "action", NULL) < 0 ||
        read_floats(args[2], n, hf, "hold", NULL) < 0)
        return NULL;
    for (int j = 0; j < n; j++) { action[j] = af[j]; hold[j] = hf[j]; }
    Py_buffer out, rk;
    if (writable_doubles(args[4], n, &out, "chosen") < 0) return NULL;
    if (writable_doubles(args[5], self->k, &rk, "risk") < 0) {
        PyBuffer_Release(&out);
        return NULL;
    }
    const int choice = critic_eval(self, action, hold, threshold, (double *)out.buf, (double *)rk.buf);
    PyBuffer_Release(&out);
    PyBuffer_Release(&rk);
    return PyLong_FromLong(choice);
}

static PyMethodDef critic_methods[] = {
    {"run", (PyCFunction)(void (*)(void))critic_run, METH_FASTCALL,
     "run(observation, action, hold, threshold, chosen_out, risk_out) -> choice"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject NativeCriticType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "deploy.safety._native.NativeCritic",
    .tp_basicsize = sizeof(NativeCritic),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The critic's selection graph as one allocation-free C call.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)critic_init,
    .tp_dealloc = (destructor)critic_dealloc,
    .tp_methods = critic_methods,
};
