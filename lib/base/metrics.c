#include "base/alloc.h"
#include "base/metrics.h"

#include "base/buf.h"
#include "base/error.h"
#include "base/log.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOD "metrics"
#define MAX_NAME 200
#define MAX_BOUNDS 64

enum kind {
	KIND_COUNTER,
	KIND_GAUGE,
	KIND_GAUGE_FN,
	KIND_HISTOGRAM,
};

/* A double lives in an atomic uint64 as its bit pattern: C11 has no
 * portable lock-free atomic double with fetch-add. */
static uint64_t d2u(double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof(u));
	return u;
}

static double u2d(uint64_t u)
{
	double d;
	memcpy(&d, &u, sizeof(d));
	return d;
}

static void atomic_add_double(_Atomic uint64_t *a, double delta)
{
	uint64_t old = atomic_load_explicit(a, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(a, &old, d2u(u2d(old) + delta),
						      memory_order_relaxed, memory_order_relaxed))
		;
}

struct kaa__counter {
	_Atomic uint64_t v;
};

struct kaa__gauge {
	_Atomic uint64_t bits;
};

struct kaa__histogram {
	size_t n; /* finite bounds; counts has n + 1 slots */
	double *bounds;
	_Atomic uint64_t *counts;  /* per bucket, not cumulative */
	_Atomic uint64_t sum_bits; /* double */
};

typedef struct series {
	char *labels; /* "" when none */
	enum kind kind;
	union {
		struct kaa__counter counter;
		struct kaa__gauge gauge;
		struct kaa__histogram hist;
		struct {
			double (*fn)(void *ud);
			void *ud;
		} fn;
	} u;
	struct series *next;
} series;

typedef struct family {
	char *name;
	char *help; /* NULL: no HELP line */
	const char *type;
	series *first;
	series *last;
	struct family *next;
} family;

struct kaa__metrics {
	pthread_mutex_t mu;
	family *first; /* guarded by mu; append-only until free */
	family *last;
};

kaa__metrics *kaa__metrics_new(void)
{
	kaa__metrics *m = kaa__xcalloc(1, sizeof(*m));

	pthread_mutex_init(&m->mu, NULL);
	return m;
}

static void series_free(series *s)
{
	if (s->kind == KIND_HISTOGRAM) {
		free(s->u.hist.bounds);
		free((void *)s->u.hist.counts);
	}
	free(s->labels);
	free(s);
}

void kaa__metrics_free(kaa__metrics *m)
{
	family *f, *fn;
	series *s, *sn;

	if (!m)
		return;
	for (f = m->first; f; f = fn) {
		fn = f->next;
		for (s = f->first; s; s = sn) {
			sn = s->next;
			series_free(s);
		}
		free(f->name);
		free(f->help);
		free(f);
	}
	pthread_mutex_destroy(&m->mu);
	free(m);
}

/* ---- validation ----------------------------------------------------------- */

static bool name_valid(const char *n)
{
	size_t len = n ? strlen(n) : 0;

	if (len == 0 || len > MAX_NAME)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = n[i];
		bool alpha =
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

/* Checks name="value"(,name="value")* and returns the reason it is not,
 * or NULL. Label names go into names[] (pointers into labels, lengths in
 * lens) to find duplicates and the reserved "le". */
static const char *labels_invalid(const char *l, bool histogram)
{
	const char *names[32];
	size_t lens[32], n = 0;
	const char *p = l;

	if (!l || !*l)
		return NULL;
	for (;;) {
		const char *s = p;
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_'))
			return "label name must start with a letter or _";
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
		       (*p >= '0' && *p <= '9'))
			p++;
		if (p - s >= 2 && s[0] == '_' && s[1] == '_')
			return "label names starting with __ are reserved";
		if (histogram && p - s == 2 && s[0] == 'l' && s[1] == 'e')
			return "label le is reserved for histograms";
		if (n == sizeof(names) / sizeof(names[0]))
			return "too many labels";
		for (size_t i = 0; i < n; i++)
			if (lens[i] == (size_t)(p - s) && memcmp(names[i], s, lens[i]) == 0)
				return "duplicate label name";
		names[n] = s;
		lens[n++] = (size_t)(p - s);
		if (p[0] != '=' || p[1] != '"')
			return "expected =\" after label name";
		p += 2;
		for (;;) {
			if (*p == '\0' || *p == '\n')
				return "unterminated label value";
			if (*p == '"')
				break;
			if (*p == '\\') {
				if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
					return "bad escape in label value";
				p++;
			}
			p++;
		}
		p++;
		if (*p == '\0')
			return NULL;
		if (*p != ',' || p[1] == '\0')
			return "expected , between labels";
		p++;
	}
}

size_t kaa__metrics_escape_label_value(const char *s, char *out, size_t size)
{
	size_t n = 0;

	for (; *s; s++) {
		const char *rep = NULL;
		char one[2] = {*s, '\0'};
		if (*s == '\\')
			rep = "\\\\";
		else if (*s == '"')
			rep = "\\\"";
		else if (*s == '\n')
			rep = "\\n";
		else
			rep = one;
		for (; *rep; rep++, n++)
			if (n + 1 < size)
				out[n] = *rep;
	}
	if (size)
		out[n < size ? n : size - 1] = '\0';
	return n;
}

/* ---- registration ---------------------------------------------------------- */

static const char *kind_type(enum kind k)
{
	switch (k) {
	case KIND_COUNTER: return "counter";
	case KIND_GAUGE:
	case KIND_GAUGE_FN: return "gauge";
	case KIND_HISTOGRAM: return "histogram";
	}
	return "untyped";
}

/*
 * Finds or creates the series (name, labels) of kind k. Returns it with
 * *created telling which; NULL with *err set when it cannot exist. For an
 * existing series the caller checks the kind-specific parameters.
 */
static series *lookup(kaa__metrics *m, const char *name, const char *help, const char *labels,
		      enum kind k, bool *created, int *err)
{
	const char *why;
	family *f;
	series *s;

	*created = false;
	*err = KAA_OK;
	if (!labels)
		labels = "";
	if (!name_valid(name)) {
		KAA_ERROR(MOD, "register_failed name=\"%s\" err=\"invalid metric name\"",
			  name ? name : "(null)");
		*err = KAA_ERR_INVAL;
		return NULL;
	}
	why = labels_invalid(labels, k == KIND_HISTOGRAM);
	if (why) {
		KAA_ERROR(MOD, "register_failed name=%s err=\"%s\"", name, why);
		*err = KAA_ERR_INVAL;
		return NULL;
	}
	for (f = m->first; f; f = f->next)
		if (strcmp(f->name, name) == 0)
			break;
	if (f && strcmp(f->type, kind_type(k)) != 0) {
		KAA_ERROR(MOD, "register_failed name=%s err=\"registered as %s, not %s\"", name,
			  f->type, kind_type(k));
		*err = KAA_ERR_INVAL;
		return NULL;
	}
	if (!f) {
		f = kaa__xcalloc(1, sizeof(*f));
		f->name = kaa__xstrdup(name);
		f->help = help && *help ? kaa__xstrdup(help) : NULL;
		f->type = kind_type(k);
		if (m->last)
			m->last->next = f;
		else
			m->first = f;
		m->last = f;
	}
	for (s = f->first; s; s = s->next) {
		if (strcmp(s->labels, labels) != 0)
			continue;
		if (s->kind != k) {
			KAA_ERROR(MOD,
				  "register_failed name=%s err=\"series exists with another kind\"",
				  name);
			*err = KAA_ERR_EXISTS;
			return NULL;
		}
		return s;
	}
	s = kaa__xcalloc(1, sizeof(*s));
	s->labels = kaa__xstrdup(labels);
	s->kind = k;
	if (f->last)
		f->last->next = s;
	else
		f->first = s;
	f->last = s;
	*created = true;
	return s;
}

kaa__counter *kaa__metrics_counter(kaa__metrics *m, const char *name, const char *help,
				   const char *labels)
{
	bool created;
	int err;
	series *s;

	pthread_mutex_lock(&m->mu);
	s = lookup(m, name, help, labels, KIND_COUNTER, &created, &err);
	if (s && created)
		atomic_init(&s->u.counter.v, 0);
	pthread_mutex_unlock(&m->mu);
	return s ? &s->u.counter : NULL;
}

kaa__gauge *kaa__metrics_gauge(kaa__metrics *m, const char *name, const char *help,
			       const char *labels)
{
	bool created;
	int err;
	series *s;

	pthread_mutex_lock(&m->mu);
	s = lookup(m, name, help, labels, KIND_GAUGE, &created, &err);
	if (s && created)
		atomic_init(&s->u.gauge.bits, d2u(0.0));
	pthread_mutex_unlock(&m->mu);
	return s ? &s->u.gauge : NULL;
}

int kaa__metrics_gauge_fn(kaa__metrics *m, const char *name, const char *help, const char *labels,
			  double (*fn)(void *ud), void *ud)
{
	bool created;
	int err;
	series *s;

	if (!fn) {
		KAA_ERROR(MOD, "register_failed name=%s err=\"callback is NULL\"",
			  name ? name : "");
		return KAA_ERR_INVAL;
	}
	pthread_mutex_lock(&m->mu);
	s = lookup(m, name, help, labels, KIND_GAUGE_FN, &created, &err);
	if (s && !created) {
		/* A second callback for one series would make one of them lie. */
		KAA_ERROR(MOD, "register_failed name=%s err=\"callback gauge already registered\"",
			  name);
		err = KAA_ERR_EXISTS;
	} else if (s) {
		s->u.fn.fn = fn;
		s->u.fn.ud = ud;
	}
	pthread_mutex_unlock(&m->mu);
	return err;
}

kaa__histogram *kaa__metrics_histogram(kaa__metrics *m, const char *name, const char *help,
				       const char *labels, const double *bounds, size_t n)
{
	struct kaa__histogram *h = NULL;
	bool created;
	int err;
	series *s;

	if (n > MAX_BOUNDS || (n > 0 && !bounds)) {
		KAA_ERROR(MOD, "register_failed name=%s err=\"at most %d bounds\"",
			  name ? name : "", MAX_BOUNDS);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
			KAA_ERROR(MOD,
				  "register_failed name=%s err=\"bounds must be finite and "
				  "strictly increasing\"",
				  name ? name : "");
			return NULL;
		}
	}
	pthread_mutex_lock(&m->mu);
	s = lookup(m, name, help, labels, KIND_HISTOGRAM, &created, &err);
	if (s && created) {
		h = &s->u.hist;
		h->n = n;
		h->bounds = kaa__xcalloc(n, sizeof(*h->bounds));
		if (n)
			memcpy(h->bounds, bounds, n * sizeof(*bounds));
		h->counts = kaa__xcalloc(n + 1, sizeof(*h->counts));
		for (size_t i = 0; i <= n; i++)
			atomic_init(&h->counts[i], 0);
		atomic_init(&h->sum_bits, d2u(0.0));
	} else if (s) {
		h = &s->u.hist;
		if (h->n != n || (n && memcmp(h->bounds, bounds, n * sizeof(*bounds)) != 0)) {
			KAA_ERROR(MOD,
				  "register_failed name=%s err=\"histogram exists with other "
				  "bounds\"",
				  name);
			h = NULL;
		}
	}
	pthread_mutex_unlock(&m->mu);
	return h;
}

/* ---- updates ----------------------------------------------------------------- */

void kaa__counter_add(kaa__counter *c, uint64_t v)
{
	if (c)
		atomic_fetch_add_explicit(&c->v, v, memory_order_relaxed);
}

void kaa__counter_inc(kaa__counter *c)
{
	kaa__counter_add(c, 1);
}

void kaa__gauge_set(kaa__gauge *g, double v)
{
	if (g)
		atomic_store_explicit(&g->bits, d2u(v), memory_order_relaxed);
}

void kaa__gauge_add(kaa__gauge *g, double delta)
{
	if (g)
		atomic_add_double(&g->bits, delta);
}

void kaa__histogram_observe(kaa__histogram *h, double v)
{
	size_t lo = 0, hi;

	if (!h || isnan(v))
		return;
	/* First bucket whose bound is >= v (le is inclusive). */
	hi = h->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (h->bounds[mid] >= v)
			hi = mid;
		else
			lo = mid + 1;
	}
	atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
	atomic_add_double(&h->sum_bits, v);
}

uint64_t kaa__counter_value(const kaa__counter *c)
{
	return c ? atomic_load_explicit(&c->v, memory_order_relaxed) : 0;
}

double kaa__gauge_value(const kaa__gauge *g)
{
	return g ? u2d(atomic_load_explicit(&g->bits, memory_order_relaxed)) : 0.0;
}

/* ---- rendering ------------------------------------------------------------------ */

/* Shortest text that reads back as the same double, with Prometheus'
 * spellings of the special values; whole numbers below 1e15 print as
 * integers ("40000", not "4e+04"). Assumes the C locale for LC_NUMERIC,
 * which daemons never change. */
static void format_double(double v, char *out, size_t size)
{
	if (isnan(v)) {
		snprintf(out, size, "NaN");
	} else if (isinf(v)) {
		snprintf(out, size, v > 0 ? "+Inf" : "-Inf");
	} else if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(out, size, "%.0f", v);
	} else {
		for (int prec = 1; prec <= 17; prec++) {
			snprintf(out, size, "%.*g", prec, v);
			if (strtod(out, NULL) == v)
				break;
		}
	}
}

static void sb_double(kaa__buf *b, double v)
{
	char tmp[40];

	format_double(v, tmp, sizeof(tmp));
	kaa__buf_puts(b, tmp);
}

static void sb_u64(kaa__buf *b, uint64_t v)
{
	char tmp[24];

	snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
	kaa__buf_puts(b, tmp);
}

/* name+suffix{labels[,extra]} */
static void sb_sample_name(kaa__buf *b, const char *name, const char *suffix, const char *labels,
			   const char *extra)
{
	kaa__buf_puts(b, name);
	kaa__buf_puts(b, suffix);
	if (*labels || extra) {
		kaa__buf_put(b, "{", 1);
		kaa__buf_puts(b, labels);
		if (*labels && extra)
			kaa__buf_put(b, ",", 1);
		if (extra)
			kaa__buf_puts(b, extra);
		kaa__buf_put(b, "}", 1);
	}
	kaa__buf_put(b, " ", 1);
}

/* HELP text escapes only backslash and newline (format 0.0.4). */
static void sb_help(kaa__buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			kaa__buf_put(b, "\\\\", 2);
		else if (*s == '\n')
			kaa__buf_put(b, "\\n", 2);
		else
			kaa__buf_put(b, s, 1);
	}
}

static void render_histogram(kaa__buf *b, const char *name, const series *s)
{
	const struct kaa__histogram *h = &s->u.hist;
	uint64_t cum = 0;
	char le[48], num[40];

	for (size_t i = 0; i <= h->n; i++) {
		cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
		if (i < h->n)
			format_double(h->bounds[i], num, sizeof(num));
		else
			snprintf(num, sizeof(num), "+Inf");
		snprintf(le, sizeof(le), "le=\"%s\"", num);
		sb_sample_name(b, name, "_bucket", s->labels, le);
		sb_u64(b, cum);
		kaa__buf_put(b, "\n", 1);
	}
	sb_sample_name(b, name, "_sum", s->labels, NULL);
	sb_double(b, u2d(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)));
	kaa__buf_put(b, "\n", 1);
	/* The summed buckets, not a separate counter: _count then always
	 * equals the +Inf bucket, as the format requires. */
	sb_sample_name(b, name, "_count", s->labels, NULL);
	sb_u64(b, cum);
	kaa__buf_put(b, "\n", 1);
}

int kaa__metrics_render(kaa__metrics *m, char **out, size_t *len)
{
	kaa__buf b = {0};

	pthread_mutex_lock(&m->mu);
	for (const family *f = m->first; f; f = f->next) {
		if (f->help) {
			kaa__buf_puts(&b, "# HELP ");
			kaa__buf_puts(&b, f->name);
			kaa__buf_put(&b, " ", 1);
			sb_help(&b, f->help);
			kaa__buf_put(&b, "\n", 1);
		}
		kaa__buf_puts(&b, "# TYPE ");
		kaa__buf_puts(&b, f->name);
		kaa__buf_put(&b, " ", 1);
		kaa__buf_puts(&b, f->type);
		kaa__buf_put(&b, "\n", 1);
		for (const series *s = f->first; s; s = s->next) {
			switch (s->kind) {
			case KIND_COUNTER:
				sb_sample_name(&b, f->name, "", s->labels, NULL);
				sb_u64(&b, kaa__counter_value(&s->u.counter));
				break;
			case KIND_GAUGE:
				sb_sample_name(&b, f->name, "", s->labels, NULL);
				sb_double(&b, kaa__gauge_value(&s->u.gauge));
				break;
			case KIND_GAUGE_FN:
				sb_sample_name(&b, f->name, "", s->labels, NULL);
				sb_double(&b, s->u.fn.fn(s->u.fn.ud));
				break;
			case KIND_HISTOGRAM: render_histogram(&b, f->name, s); continue;
			}
			kaa__buf_put(&b, "\n", 1);
		}
	}
	pthread_mutex_unlock(&m->mu);
	return kaa__buf_take(&b, out, len);
}
