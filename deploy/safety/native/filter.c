/* The safety filter's tick (deploy/safety/filter.py) in C, stage for stage and operation for operation,
 * so that both give bit-identical commands (tests/deploy/test_safety_native.py checks it on
 * arbitrary input sequences). Plain double arithmetic in the same order as the Python, no
 * contraction into fused multiply-adds (-std=c11), cos/sin from the same libm.
 *
 * deploy.safety.filter.SafetyFilter builds a NativeFilter from its SafetyLimits and calls
 * tick(command, joint_pos, command_age, observation, estop, state_age) -> (bits, critic_ran,
 * choice, risk); the safe command is written into the ``last`` array the filter owns.
 *
 * The last stage (``last_stage_ok``) checks the command about to be emitted with tests that NaN
 * fails (``!(lo <= x && x <= hi)``) and holds the last one otherwise; ages are fresh only in
 * ``[0, limit]`` (NaN and negative ages are not). Stage 4 lets a NaN target through unchanged,
 * for the last stage to hold.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "native.h"

enum { GUARD = 1, WATCHDOG = 2, ENVELOPE = 4, RATE = 8, CRITIC = 16, WORKSPACE = 32, ESTOP = 64,
       DAMP = 128, LAST_STAGE = 256 };
static const double WORKSPACE_FRACTIONS[3] = {0.5, 0.25, 0.0};

typedef struct {
    PyObject_HEAD
    int n;
    double *q_min, *q_max, *reach, *max_step, *final_step;  /* per joint (n) */
    double cbf, sensor_timeout, watchdog_age, damp_age, policy_period, frozen_tolerance;
    int frozen_ticks, interpolate;
    int clip_command;  /* clip a live command into [q_min, q_max] first (critic or ramp) */
    int has_box, has_ee_step, cartesian;
    double lo[3], hi[3], ee_step;
    double *rows_back;  /* (n, 12): each joint's rotation (9) and translation (3), last first */
    double ee[3];
    NativeCritic *critic;  /* or NULL */
    double threshold;
    int period_ticks;
    Py_buffer last_view, risks_view;  /* arrays the Python filter owns */
    double *last, *risks;
    /* state */
    double *q_prev, *ramp_from, *ramp_to, *raw, *live, *critic_out, *target, *out, *cand, *chosen;
    double *estop_target;  /* the hold target latched when the e-stop engaged */
    int have_q_prev, same_q, have_ramp, have_live, estop_latched;
    double prev_age, risk, ws_excess, p_last[3];
    int since_critic, choice;
} NativeFilter;

static void filter_dealloc(NativeFilter *self) {
    free(self->q_min);  /* one block holds every per-joint array */
    free(self->rows_back);
    if (self->last_view.obj) PyBuffer_Release(&self->last_view);
    if (self->risks_view.obj) PyBuffer_Release(&self->risks_view);
    Py_XDECREF(self->critic);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int doubles_from(PyObject *obj, int want, double *dst, const char *what) {
    Py_buffer v;
    if (PyObject_GetBuffer(obj, &v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    int ok = format_is(v.format, 'd') && v.len == (Py_ssize_t)want * 8;
    if (ok) memcpy(dst, v.buf, (size_t)want * 8);
    else PyErr_Format(PyExc_ValueError, "NativeFilter: %s must be %d float64 values", what, want);
    PyBuffer_Release(&v);
    return ok ? 0 : -1;
}

static int bind_doubles(PyObject *obj, int want, Py_buffer *view, double **dst, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_FORMAT) < 0)
        return -1;
    if (!format_is(view->format, 'd') || view->len != (Py_ssize_t)want * 8) {
        PyErr_Format(PyExc_ValueError, "NativeFilter: %s must be %d writable float64 values", what,
                     want);
        PyBuffer_Release(view);
        view->obj = NULL;
        return -1;
    }
    *dst = (double *)view->buf;
    return 0;
}

static int filter_init(NativeFilter *self, PyObject *args, PyObject *kwds) {
    static char *kw[] = {"q_min", "q_max", "reach", "max_step", "final_step", "cbf",
                         "sensor_timeout", "watchdog_age", "damp_age", "policy_period",
                         "frozen_tolerance", "frozen_ticks", "interpolate", "last", "box_low",
                         "box_high", "ee_step", "rows_back", "ee", "critic", "threshold",
                         "period_ticks", "risks", NULL};
    PyObject *qmin, *qmax, *reach, *step, *final_step, *last;
    PyObject *lo = Py_None, *hi = Py_None, *ee_step = Py_None;
    PyObject *rows = Py_None, *ee = Py_None, *critic = Py_None, *risks = Py_None;
    double threshold = 1.0;
    int period = 1;
    if (self->n != 0) {
        PyErr_SetString(PyExc_RuntimeError, "NativeFilter: already initialized");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(
            args, kwds, "OOOOOddddddipO|OOOOOOdiO", kw, &qmin, &qmax, &reach, &step, &final_step,
            &self->cbf, &self->sensor_timeout, &self->watchdog_age, &self->damp_age,
            &self->policy_period, &self->frozen_tolerance, &self->frozen_ticks, &self->interpolate,
            &last, &lo, &hi, &ee_step, &rows, &ee, &critic, &threshold, &period, &risks))
        return -1;
    Py_buffer probe;
    if (PyObject_GetBuffer(last, &probe, PyBUF_C_CONTIGUOUS) < 0) return -1;
    const int n = (int)(probe.len / 8);
    PyBuffer_Release(&probe);
    if (n < 1) {
        PyErr_SetString(PyExc_ValueError, "NativeFilter: last must hold the joints");
        return -1;
    }
    self->n = n;
    double *block = (double *)calloc((size_t)n * 16, sizeof(double));
    if (block == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    double **arrays[] = {&self->q_min, &self->q_max, &self->reach, &self->max_step, &self->q_prev,
                         &self->ramp_from, &self->ramp_to, &self->raw, &self->live,
                         &self->critic_out, &self->target, &self->out, &self->cand, &self->chosen,
                         &self->final_step, &self->estop_target};
    for (int i = 0; i < 16; i++) *arrays[i] = block + (size_t)i * n;
    if (doubles_from(qmin, n, self->q_min, "q_min") < 0 ||
        doubles_from(qmax, n, self->q_max, "q_max") < 0 ||
        doubles_from(reach, n, self->reach, "reach") < 0 ||
        doubles_from(step, n, self->max_step, "max_step") < 0 ||
        doubles_from(final_step, n, self->final_step, "final_step") < 0 ||
        bind_doubles(last, n, &self->last_view, &self->last, "last") < 0)
        return -1;
    self->has_box = lo != Py_None;
    if (self->has_box) {
        if (doubles_from(lo, 3, self->lo, "box_low") < 0 ||
            doubles_from(hi, 3, self->hi, "box_high") < 0)
            return -1;
    }
    self->has_ee_step = ee_step != Py_None;
    if (self->has_ee_step) {
        self->ee_step = PyFloat_AsDouble(ee_step);
        if (PyErr_Occurred()) return -1;
    }
    self->cartesian = self->has_box || self->has_ee_step;
    if (self->cartesian) {
        self->rows_back = (double *)malloc((size_t)n * 12 * sizeof(double));
        if (self->rows_back == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        if (rows == Py_None || ee == Py_None ||
            doubles_from(rows, n * 12, self->rows_back, "rows_back") < 0 ||
            doubles_from(ee, 3, self->ee, "ee") < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "NativeFilter: a box or ee_step needs the chain");
            return -1;
        }
    }
    if (critic != Py_None) {
        if (!PyObject_TypeCheck(critic, &NativeCriticType) || ((NativeCritic *)critic)->n != n) {
            PyErr_SetString(PyExc_ValueError, "NativeFilter: critic must be a NativeCritic of n joints");
            return -1;
        }
        Py_INCREF(critic);
        self->critic = (NativeCritic *)critic;
        self->threshold = threshold;
        self->period_ticks = period;
        if (bind_doubles(risks, self->critic->k, &self->risks_view, &self->risks, "risks") < 0)
            return -1;
    }
    self->clip_command = self->critic != NULL || self->interpolate;
    return 0;
}

/* End-effector point of joint vector ``q`` (deploy.safety.kinematics.SerialChain.position). */
static void position(const NativeFilter *f, const double *q, double p[3]) {
    double x = f->ee[0], y = f->ee[1], z = f->ee[2];
    for (int i = 0; i < f->n; i++) {
        const double *r = f->rows_back + (size_t)i * 12;
        const double qj = q[f->n - 1 - i], c = cos(qj), s = sin(qj);
        const double x1 = c * x - s * y, y1 = s * x + c * y;
        x = r[0] * x1 + r[1] * y1 + r[2] * z + r[9];
        y = r[3] * x1 + r[4] * y1 + r[5] * z + r[10];
        z = r[6] * x1 + r[7] * y1 + r[8] * z + r[11];
    }
    p[0] = x; p[1] = y; p[2] = z;
}

static double dist(const double a[3], const double b[3]) {
    const double dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
    return sqrt(dx * dx + dy * dy + dz * dz);
}

/* SafetyFilter._cartesian_ok: acceptable?, with the point and the box excess. */
static int cartesian_ok(const NativeFilter *f, const double *cmd, double p[3], double *excess) {
    position(f, cmd, p);
    double e = 0.0;
    if (f->has_box) {
        double ex[3];
        for (int a = 0; a < 3; a++)
            ex[a] = p[a] < f->lo[a] ? f->lo[a] - p[a] : p[a] > f->hi[a] ? p[a] - f->hi[a] : 0.0;
        e = ex[0] + ex[1] + ex[2];
    }
    *excess = e;
    int ok = e <= f->ws_excess + 1e-9;
    if (ok && f->has_ee_step) ok = dist(p, f->p_last) <= f->ee_step;
    return ok;
}

static int all_finite(const double *x, int n) {  /* finite(): the plain sum is finite */
    double s = 0.0;
    for (int i = 0; i < n; i++) s += x[i];
    return isfinite(s);
}

/* reset(): the Python filter has written the clipped start into ``last``. */
static PyObject *filter_reset(NativeFilter *self, PyObject *Py_UNUSED(ignored)) {
    self->have_q_prev = self->same_q = self->have_ramp = self->have_live = self->estop_latched = 0;
    self->prev_age = INFINITY;
    self->since_critic = 0;
    self->risk = NAN;
    self->choice = -1;
    self->ws_excess = 0.0;
    self->p_last[0] = self->p_last[1] = self->p_last[2] = 0.0;
    if (self->cartesian) {
        self->ws_excess = INFINITY;
        double p[3], e;
        cartesian_ok(self, self->last, p, &e);
        memcpy(self->p_last, p, sizeof p);
        self->ws_excess = e;
    }
    Py_RETURN_NONE;
}

/* A float64 vector argument: its data if it is a contiguous float64 buffer of n values, NULL
 * (no error) if it has another size, NULL with an error if it is not a float64 buffer. */
static const double *vector_arg(PyObject *obj, int n, Py_buffer *view, int *size_ok) {
    *size_ok = 0;
    if (obj == Py_None) return NULL;
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    if (!format_is(view->format, 'd')) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_TypeError, "NativeFilter.tick: vectors must be float64 arrays");
        return NULL;
    }
    *size_ok = view->len == (Py_ssize_t)n * 8;
    return (const double *)view->buf;
}

static int state_ok(NativeFilter *f, const double *q, int size_ok, double state_age) {
    const int fresh = state_age >= 0.0 && state_age <= f->sensor_timeout;  /* NaN: not fresh */
    if (q == NULL || !size_ok || !fresh || !all_finite(q, f->n)) {
        f->same_q = 0;
        return 0;
    }
    if (f->frozen_ticks <= 0) return 1;
    const size_t bytes = (size_t)f->n * sizeof(double);
    f->same_q = f->have_q_prev && memcmp(q, f->q_prev, bytes) == 0 ? f->same_q + 1 : 0;
    memcpy(f->q_prev, q, bytes);
    f->have_q_prev = 1;
    if (f->same_q < f->frozen_ticks) return 1;
    double worst = 0.0;
    for (int j = 0; j < f->n; j++) {
        const double d = fabs(f->last[j] - q[j]);
        worst = d > worst ? d : worst;
    }
    return !(worst > f->frozen_tolerance);
}

/* SafetyFilter._command_target: the target (into f->target), stage bits, live or not. */
static int command_target(NativeFilter *f, const double *cmd, int cmd_size_ok, double age,
                          const double *q, int ok, int *bits) {
    const int n = f->n;
    const size_t bytes = (size_t)n * sizeof(double);
    if (!cmd_size_ok || !all_finite(cmd, n)) {
        *bits |= GUARD;
        memcpy(f->target, f->last, bytes);
        return 0;
    }
    if (!(age >= 0.0 && age <= f->watchdog_age)) {  /* NaN, negative: not fresh */
        if (age > f->damp_age && ok) {
            *bits |= WATCHDOG | DAMP;
            memcpy(f->target, q, bytes);
        } else {
            *bits |= WATCHDOG;
            memcpy(f->target, f->last, bytes);
        }
        return 0;
    }
    if (!ok) {
        memcpy(f->target, f->last, bytes);
        return 0;
    }
    const int is_new = age < f->prev_age;
    f->prev_age = age;
    memcpy(f->raw, cmd, bytes);
    memcpy(f->target, cmd, bytes);
    if (f->clip_command) {  /* SafetyFilter._clip: cmd is finite here */
        int clipped = 0;
        for (int j = 0; j < n; j++) {
            const double x = f->target[j];
            if (x < f->q_min[j]) {
                f->target[j] = f->q_min[j];
                clipped = 1;
            } else if (x > f->q_max[j]) {
                f->target[j] = f->q_max[j];
                clipped = 1;
            }
        }
        if (clipped) *bits |= ENVELOPE;
    }
    if (!f->interpolate) return 1;
    if (is_new) {
        memcpy(f->ramp_from, f->have_ramp ? f->ramp_to : f->last, bytes);
        memcpy(f->ramp_to, f->target, bytes);
        f->have_ramp = 1;
    }
    double frac = age / f->policy_period;
    frac = frac > 0.0 ? frac : 0.0;  /* max(0.0, x) */
    frac = frac < 1.0 ? frac : 1.0;  /* min(1.0, x) */
    for (int j = 0; j < n; j++)
        f->target[j] = f->ramp_from[j] + frac * (f->target[j] - f->ramp_from[j]);
    return 1;
}

/* SafetyFilter._critic_stage (with CriticGuard.evaluate): may replace f->target. */
static int critic_stage(NativeFilter *f, PyObject *observation) {
    NativeCritic *c = f->critic;
    const size_t bytes = (size_t)f->n * sizeof(double);
    f->since_critic += 1;
    const int changed = !f->have_live || memcmp(f->raw, f->live, bytes) != 0;
    if (!(changed || f->since_critic >= f->period_ticks)) {
        if (f->choice > 0) memcpy(f->target, f->critic_out, bytes);
        return 0;
    }
    /* CriticGuard.evaluate: an observation that is not finite in float32, or malformed (the
     * wrong size or type: the Python glue hands over an empty array then), keeps the action */
    double sum;
    if (read_floats(observation, c->d, c->obs, "observation", &sum) < 0) {
        PyErr_Clear();
        sum = NAN;
    }
    if (!isfinite(sum)) {
        f->risk = NAN;
        f->choice = 0;
        memcpy(f->chosen, f->target, bytes);
    } else {
        f->choice = critic_eval(c, f->target, f->last, f->threshold, f->chosen, f->risks);
        f->risk = f->risks[0];
    }
    memcpy(f->live, f->raw, bytes);
    f->have_live = 1;
    memcpy(f->critic_out, f->chosen, bytes);
    f->since_critic = 0;
    memcpy(f->target, f->chosen, bytes);
    return 1;
}

/* SafetyFilter._bound: the CBF envelope around q (q NULL: skipped), limits, rate limit. A NaN
 * target passes through unchanged (every comparison is false), to be held by last_stage. */
static int bound(NativeFilter *f, const double *q) {
    const double cbf = f->cbf;
    int bits = 0;
    for (int j = 0; j < f->n; j++) {
        const double t = f->target[j], lo = f->q_min[j], hi = f->q_max[j];
        const double reach = f->reach[j], step = f->max_step[j], prev = f->last[j];
        double b = t;
        if (q != NULL) {
            const double qj = q[j];
            double d = cbf * (qj - lo);
            d = qj - (d < reach ? d : reach);
            if (b < d) b = d;
            double u = cbf * (hi - qj);
            u = qj + (u < reach ? u : reach);
            if (b > u) b = u;
        }
        if (b < lo) b = lo;
        else if (b > hi) b = hi;
        double o = b;
        if (o < prev - step) o = prev - step;
        else if (o > prev + step) o = prev + step;
        if (b != t) bits |= ENVELOPE;
        if (o != b) bits |= RATE;
        f->out[j] = o;
    }
    return bits;
}

/* SafetyFilter._workspace on f->out: shorten the step from last until acceptable. */
static int workspace(NativeFilter *f) {
    const int n = f->n;
    const size_t bytes = (size_t)n * sizeof(double);
    if (memcmp(f->out, f->last, bytes) == 0) return 0;  /* holding: no kinematics */
    double p[3], e;
    if (cartesian_ok(f, f->out, p, &e)) {
        memcpy(f->p_last, p, sizeof p);
        f->ws_excess = e;
        return 0;
    }
    double fracs[4];
    int m = 0;
    if (f->has_ee_step) {
        const double moved = dist(p, f->p_last);
        if (moved > f->ee_step) fracs[m++] = 0.95 * f->ee_step / moved;
    }
    for (int i = 0; i < 3; i++) fracs[m++] = WORKSPACE_FRACTIONS[i];
    for (int i = 0; i < m; i++) {
        const double frac = fracs[i];
        if (frac <= 0.0) {
            memcpy(f->out, f->last, bytes);
            return WORKSPACE;
        }
        for (int j = 0; j < n; j++) f->cand[j] = f->last[j] + frac * (f->out[j] - f->last[j]);
        if (cartesian_ok(f, f->cand, p, &e)) {
            memcpy(f->p_last, p, sizeof p);
            f->ws_excess = e;
            memcpy(f->out, f->cand, bytes);
            return WORKSPACE;
        }
    }
    return WORKSPACE;  /* unreachable: the fractions end with 0 */
}

/* SafetyFilter._last_stage_ok on f->out: inside [q_min, q_max] and within final_step (finite)
 * of the last command (finite), with comparisons that NaN fails. */
static int last_stage_ok(const NativeFilter *f) {
    for (int j = 0; j < f->n; j++) {
        const double o = f->out[j], lo = f->q_min[j], hi = f->q_max[j], step = f->final_step[j];
        if (!(lo <= o && o <= hi && fabs(o - f->last[j]) <= step)) return 0;
    }
    return 1;
}

/* tick(command|None, joint_pos|None, command_age, observation|None, estop, state_age)
 *   -> (stage bits, critic ran, choice, risk); the command is written into ``last``. */
static PyObject *filter_tick(NativeFilter *f, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "NativeFilter.tick takes 6 arguments");
        return NULL;
    }
    const double age = PyFloat_AsDouble(args[2]), state_age = PyFloat_AsDouble(args[5]);
    const int estop = PyObject_IsTrue(args[4]);
    if (PyErr_Occurred() || estop < 0) return NULL;
    Py_buffer qv = {0}, cv = {0};
    int q_size_ok, cmd_size_ok;
    const double *q = vector_arg(args[1], f->n, &qv, &q_size_ok);
    if (q == NULL && PyErr_Occurred()) return NULL;
    const double *cmd = vector_arg(args[0], f->n, &cv, &cmd_size_ok);
    if (cmd == NULL && PyErr_Occurred()) {
        if (qv.obj) PyBuffer_Release(&qv);
        return NULL;
    }
    const size_t bytes = (size_t)f->n * sizeof(double);
    const int ok = state_ok(f, q, q_size_ok, state_age);
    int bits = ok ? 0 : GUARD, ran = 0;
    if (estop) {
        if (!f->estop_latched) {  /* where the arm is when the e-stop engages, held from then on */
            memcpy(f->estop_target, ok ? q : f->last, bytes);
            f->estop_latched = 1;
        }
        memcpy(f->target, f->estop_target, bytes);
        bits |= ESTOP;
    } else {
        f->estop_latched = 0;
        int live;
        if (cmd == NULL) {
            bits |= WATCHDOG;
            memcpy(f->target, f->last, bytes);
            live = 0;
        } else {
            live = command_target(f, cmd, cmd_size_ok, age, q, ok, &bits);
        }
        if (live && f->critic != NULL && args[3] != Py_None) {
            ran = critic_stage(f, args[3]);
            if (ran < 0) {
                if (qv.obj) PyBuffer_Release(&qv);
                if (cv.obj) PyBuffer_Release(&cv);
                return NULL;
            }
            if (f->choice > 0) bits |= CRITIC;
        }
    }
    bits |= bound(f, ok ? q : NULL);
    int safe = last_stage_ok(f);  /* stage 6 on stage 4's command ... */
    double p_last[3], ws_excess = f->ws_excess;
    memcpy(p_last, f->p_last, sizeof p_last);
    if (f->cartesian && safe) {  /* (an unsafe command is held, not shortened) */
        const int moved = workspace(f);
        bits |= moved;
        if (moved) safe = last_stage_ok(f);  /* ... and on the workspace's, if it changed it */
    }
    if (!safe) {  /* hold the last safe command; the workspace state is its own again */
        bits |= LAST_STAGE;
        memcpy(f->out, f->last, bytes);
        memcpy(f->p_last, p_last, sizeof p_last);
        f->ws_excess = ws_excess;
    }
    memcpy(f->last, f->out, bytes);
    if (qv.obj) PyBuffer_Release(&qv);
    if (cv.obj) PyBuffer_Release(&cv);
    return Py_BuildValue("(iOid)", bits, ran ? Py_True : Py_False, f->choice, f->risk);
}

static PyMethodDef filter_methods[] = {

    {"tick", (PyCFunction)(void (*)(void))filter_tick, METH_FASTCALL,
     "tick(command, joint_pos, command_age, observation, estop, state_age) -> "
     "(bits, critic_ran, choice, risk)"},
    {"reset", (PyCFunction)filter_reset, METH_NOARGS, "reset(): start from ``last``"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject NativeFilterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "deploy.safety._native.NativeFilter",
    .tp_basicsize = sizeof(NativeFilter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The safety filter's tick in C (deploy.safety.filter.SafetyFilter uses it).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)filter_init,
    .tp_dealloc = (destructor)filter_dealloc,
    .tp_methods = filter_methods,
};
