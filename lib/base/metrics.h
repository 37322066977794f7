/*
 * metrics.h - a Prometheus metrics registry rendered in the text
 * exposition format 0.0.4 (served as GET /metrics on every port).
 *
 * A metric family is a name with one HELP, one TYPE and any number of
 * series, each identified by a preformatted label set such as
 *   service="control",port="8080"
 * Label values must already be escaped as the format requires (\\, \"
 * and \n); kaa__metrics_escape_label_value does that. Families render in
 * registration order and series in registration order within a family,
 * so the output is deterministic.
 *
 * Registering the same name and label set again returns the existing
 * handle (so two services in one process may both register it); the
 * first help text wins. Handles stay valid until kaa__metrics_free.
 *
 * Threads: everything may be called from any thread. Updates are lock-free
 * atomics; registration and rendering take the registry's mutex. Callback
 * gauges are called during kaa__metrics_render with that mutex held: they
 * must not register metrics or render.
 *
 * Registration errors are programming errors: the functions returning a
 * handle log them (KAA_ERROR) and return NULL, and every update function
 * accepts NULL as a no-op so a bad name costs a metric, not the process.
 */
#ifndef KAA_METRICS_H
#define KAA_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* Content-Type for the rendered text. */
#define KAA__METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct kaa__metrics kaa__metrics;
typedef struct kaa__counter kaa__counter;
typedef struct kaa__gauge kaa__gauge;
typedef struct kaa__histogram kaa__histogram;

/* Aborts on out-of-memory; never returns NULL. */
kaa__metrics *kaa__metrics_new(void);
/* Frees the registry and every handle it gave out. Accepts NULL. */
void kaa__metrics_free(kaa__metrics *m);

/*
 * Registration. name must match [a-zA-Z_:][a-zA-Z0-9_:]* (at most 200
 * characters). help may be NULL (no HELP line); it is copied. labels is
 * NULL, "" or a comma-separated list of name="value" pairs without spaces,
 * label names [a-zA-Z_][a-zA-Z0-9_]* not starting with "__", unique, at most 32;
 * it is copied. NULL is returned (and logged) when:
 *   - name or labels is malformed;
 *   - name is already registered with another type;
 *   - the same name and labels exist with another kind (a callback gauge
 *     versus a settable gauge) or, for histograms, other bounds.
 */
kaa__counter *kaa__metrics_counter(kaa__metrics *m, const char *name, const char *help,
				   const char *labels);
kaa__gauge *kaa__metrics_gauge(kaa__metrics *m, const char *name, const char *help,
			       const char *labels);

/*
 * A gauge whose value is fn(ud), called at each render (see the thread
 * rules above). ud is borrowed and must stay valid while the registry can
 * render. Returns KAA_OK, KAA_ERR_INVAL for the reasons listed above
 * (including fn NULL), or KAA_ERR_EXISTS when this name and label set is
 * already registered.
 */
int kaa__metrics_gauge_fn(kaa__metrics *m, const char *name, const char *help, const char *labels,
			  double (*fn)(void *ud), void *ud);

/*
 * A histogram with n upper bounds (the +Inf bucket is implicit); bounds
 * must be finite and strictly increasing, n <= 64, and labels must not
 * use the name "le". bounds is copied.
 */
kaa__histogram *kaa__metrics_histogram(kaa__metrics *m, const char *name, const char *help,
				       const char *labels, const double *bounds, size_t n);

/* Updates: lock-free, any thread, NULL handle is a no-op. A counter wraps
 * at 2^64. NaN observations are dropped (they would poison _sum). */
void kaa__counter_add(kaa__counter *c, uint64_t v);
void kaa__counter_inc(kaa__counter *c);
void kaa__gauge_set(kaa__gauge *g, double v);
void kaa__gauge_add(kaa__gauge *g, double delta);
void kaa__histogram_observe(kaa__histogram *h, double v);

/* Current values (tests, internal decisions). NULL gives 0. */
uint64_t kaa__counter_value(const kaa__counter *c);
double kaa__gauge_value(const kaa__gauge *g);

/*
 * Renders every family into *out (malloc'd, NUL-terminated, owned by the
 * caller) with its length in *len. Histogram buckets are cumulative and
 * _count equals the +Inf bucket even while observations race the render.
 * Returns KAA_OK (aborts on out-of-memory).
 */
int kaa__metrics_render(kaa__metrics *m, char **out, size_t *len);

/*
 * Escapes s for use inside a label value (backslash, double quote and
 * newline) into out[0..size), always NUL-terminated when size > 0.
 * Returns the length the escaped text needs (excluding the NUL); the
 * output is complete when that is < size, like snprintf.
 */
size_t kaa__metrics_escape_label_value(const char *s, char *out, size_t size);

#endif
