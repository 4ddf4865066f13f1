/* deploy.safety._native: the safety filter's 1 kHz tick and the critic's selection graph in C.
 * critic.c: NativeCritic (critic_eval); filter.c: NativeFilter; module.c: the module. */
#ifndef SPINE_NATIVE_H
#define SPINE_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define MAX_LAYERS 8

typedef struct {
    PyObject_HEAD
    int k, n, d, w;          /* candidates, joints, observation size, twin width (2H) */
    int pos_offset;          /* start of joint_pos in the observation */
    int layers;              /* hidden layers after the first */
    float *mix, *rel_mix;    /* (K, 3) */
    float *offsets;          /* (K, n) */
    float *inv_scale;        /* (n,) */
    float clip_lo, clip_hi;
    float *w1_obs, *b1;      /* (D, 2H), (2H,) */
    float *w1_act;           /* (n, 2H) */
    float *wh[MAX_LAYERS], *bh[MAX_LAYERS]; /* (2, H, H): the twins' diagonal blocks; (2H,) */
    float *w_out_t, *b_out;  /* (2, 2H), (2,) */
    float *accept_key, *margin; /* (K,) */
    float *obs;              /* (D,) the observation in float32 */
    float *scratch;          /* anchors (3n), candidates (Kn), features (Kn), obs share (2H),
                                hidden (K 2H) x 2, risk (K) */
} NativeCritic;

/* A buffer format that is ``code`` ('d' float64, 'f' float32) in native byte order ("d", "=d",
 * "@d", and "<d" on a little-endian machine). */
static inline int format_is(const char *fmt, char code) {
    if (fmt == NULL) return 0;
    const unsigned one = 1;
    const int little = *(const unsigned char *)&one == 1;
    if (*fmt == '@' || *fmt == '=' || (little && *fmt == '<') || (!little && *fmt == '>')) fmt++;
    return fmt[0] == code && fmt[1] == '\0';
}

extern PyTypeObject NativeCriticType;
extern PyTypeObject NativeFilterType;

/* Copy ``want`` float64 or float32 values of a contiguous buffer into float32 ``dst`` (and
 * the plain sum in double of the float32 values into ``*sum`` unless NULL: finite iff every
 * value is finite in float32); -1 with a ValueError naming ``what`` otherwise. */
int read_floats(PyObject *obj, Py_ssize_t want, float *dst, const char *what, double *sum);

/* The selection on ``critic->obs`` (already filled): risk of every candidate into ``risk``
 * (K), the chosen candidate into ``chosen`` (n); returns its index. */
int critic_eval(NativeCritic *critic, const double *action, const double *hold, double threshold,
                double *chosen, double *risk);

#endif
