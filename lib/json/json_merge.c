#include "json/json_merge.h"

#include "base/alloc.h"
#include "base/error.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- paths and error strings ---------------------------------------- */

void kaa__json_path_init(kaa__json_path *p)
{
	p->buf[0] = '$';
	p->buf[1] = '\0';
	p->len = 1;
	p->elided_at = 0;
}

/* Appends s[0..n) or, when that does not fit, "..." once. */
static size_t path_append(kaa__json_path *p, const char *s, size_t n)
{
	size_t mark = p->len;

	if (p->elided_at)
		return mark;
	if (p->len + n + 4 > sizeof(p->buf)) { /* keep room for "..." and NUL */
		memcpy(p->buf + p->len, "...", 4);
		p->elided_at = p->len;
		p->len += 3;
		return mark;
	}
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	p->buf[p->len] = '\0';
	return mark;
}

static bool simple_key(const char *k)
{
	if (!*k)
		return false;
	for (; *k; k++) {
		unsigned char c = (unsigned char)*k;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '$' || c == '-'))
			return false;
	}
	return true;
}

/* Writes s JSON-escaped (no quotes) into out[0..n), at most max_chars
 * source bytes; returns bytes written (NUL-terminated when n > 0). Sets
 * *cut when s was longer. */
static size_t escape_into(char *out, size_t n, const char *s, size_t max_chars, bool *cut)
{
	size_t w = 0, i;

	*cut = false;
	if (n == 0)
		return 0;
	for (i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		char tmp[8];
		size_t tl;

		if (i >= max_chars) {
			*cut = true;
			break;
		}
		if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			tl = 2;
		} else if (c < 0x20) {
			snprintf(tmp, sizeof(tmp), "\\u%04x", c);
			tl = 6;
		} else {
			tmp[0] = (char)c;
			tl = 1;
		}
		if (w + tl + 1 > n) {
			*cut = true;
			break;
		}
		memcpy(out + w, tmp, tl);
		w += tl;
	}
	/* never leave a partial UTF-8 sequence at the end: drop the last
	 * multi-byte character whole */
	if (*cut) {
		size_t k = w;
		while (k > 0 && ((unsigned char)out[k - 1] & 0xC0) == 0x80)
			k--;
		if (k > 0 && ((unsigned char)out[k - 1] & 0xC0) == 0xC0)
			w = k - 1;
	}
	out[w] = '\0';
	return w;
}

size_t kaa__json_path_key(kaa__json_path *p, const char *key)
{
	char tmp[KAA_JSON_PATH_MAX];
	size_t n;
	bool cut;

	if (simple_key(key)) {
		n = strlen(key);
		if (n + 1 < sizeof(tmp)) {
			tmp[0] = '.';
			memcpy(tmp + 1, key, n);
			return path_append(p, tmp, n + 1);
		}
		return path_append(p, key, sizeof(tmp)); /* elides */
	}
	tmp[0] = '[';
	tmp[1] = '"';
	n = escape_into(tmp + 2, sizeof(tmp) - 4, key, sizeof(tmp), &cut);
	if (cut)
		return path_append(p, tmp, sizeof(tmp)); /* elides */
	tmp[2 + n] = '"';
	tmp[3 + n] = ']';
	return path_append(p, tmp, n + 4);
}

size_t kaa__json_path_index(kaa__json_path *p, size_t i)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "[%zu]", i);
	return path_append(p, tmp, (size_t)n);
}

void kaa__json_path_pop(kaa__json_path *p, size_t mark)
{
	if (mark >= p->len)
		return;
	p->len = mark;
	p->buf[mark] = '\0';
	if (p->elided_at && mark <= p->elided_at)
		p->elided_at = 0;
}

void kaa__json_errf(char *err, size_t errlen, const kaa__json_path *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!err || errlen == 0)
		return;
	n = snprintf(err, errlen, "%s: ", p ? p->buf : "$");
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

const char *kaa__json_quote(char *buf, size_t n, const char *s)
{
	bool cut;
	size_t w;

	if (n < 8) {
		if (n)
			buf[0] = '\0';
		return buf;
	}
	buf[0] = '"';
	w = escape_into(buf + 1, n - 5, s ? s : "", 40, &cut);
	if (cut) {
		memcpy(buf + 1 + w, "...", 3);
		w += 3;
	}
	buf[1 + w] = '"';
	buf[2 + w] = '\0';
	return buf;
}

const char *kaa__json_err_msg(const char *err, size_t *pathlen)
{
	const char *s = err;

	*pathlen = 0;
	if (!err || *s != '$')
		return err;
	s++;
	for (;;) {
		if (*s == '.' && s[1] == '.' && s[2] == '.') {
			s += 3;
			break;
		} else if (*s == '.') {
			const char *b = ++s;
			while (*s && *s != '.' && *s != '[' && *s != ':')
				s++;
			if (s == b)
				return err;
		} else if (s[0] == '[' && s[1] == '"') {
			for (s += 2; *s && *s != '"'; s++)
				if (*s == '\\' && s[1])
					s++;
			if (s[0] != '"' || s[1] != ']')
				return err;
			s += 2;
		} else if (*s == '[') {
			const char *b = ++s;
			while (*s >= '0' && *s <= '9')
				s++;
			if (s == b || *s != ']')
				return err;
			s++;
		} else {
			break;
		}
	}
	if (s[0] != ':' || s[1] != ' ')
		return err;
	*pathlen = (size_t)(s - err);
	return s + 2;
}

/* ---- numbers ----------------------------------------------------------- */

bool kaa__json_int64(yajl_val v, int64_t *out)
{
	const char *r;
	char *end;
	long long x;

	if (!YAJL_IS_NUMBER(v) || !v->u.number.r)
		return false;
	r = v->u.number.r;
	if (strpbrk(r, ".eE"))
		return false;
	errno = 0;
	x = strtoll(r, &end, 10);
	if (errno || end == r || *end)
		return false;
	if (out)
		*out = (int64_t)x;
	return true;
}

yajl_val kaa__json_member(yajl_val obj, const char *key)
{
	for (size_t i = 0; YAJL_IS_OBJECT(obj) && i < obj->u.object.len; i++)
		if (strcmp(obj->u.object.keys[i], key) == 0)
			return obj->u.object.values[i];
	return NULL;
}

double kaa__json_double(yajl_val v)
{
	int64_t i;

	if (!YAJL_IS_NUMBER(v))
		return 0.0;
	if (kaa__json_int64(v, &i))
		return (double)i;
	return strtod(v->u.number.r, NULL);
}

/* Canonical text of a number (see the header). buf holds >= 32 bytes. */
static size_t number_canon(yajl_val v, char *buf, size_t n)
{
	int64_t i;
	double d;

	if (kaa__json_int64(v, &i))
		return (size_t)snprintf(buf, n, "%lld", (long long)i);
	d = strtod(v->u.number.r, NULL);
	if (!isfinite(d))
		d = 0.0; /* unreachable for parsed trees */
	if (d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
		return (size_t)snprintf(buf, n, "%lld", (long long)d);
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, n, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	return strlen(buf);
}

/* ---- parsing ------------------------------------------------------------ */

static bool is_hex0(const char *s)
{
	return s[0] == '0' && s[1] == '0' && s[2] == '0' && s[3] == '0';
}

/* Checks the raw text before yajl sees it: nesting depth and NUL. */
static int prescan(const char *s, size_t len, int max_depth, char *err, size_t errlen)
{
	bool in_str = false;
	int depth = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '\0') {
			kaa__json_errf(err, errlen, NULL, "NUL byte at offset %zu", i);
			return KAA_ERR_INVAL;
		}
		if (in_str) {
			if (c == '\\') {
				if (i + 5 < len && s[i + 1] == 'u' && is_hex0(s + i + 2)) {
					kaa__json_errf(err, errlen, NULL,
						       "\\u0000 in a string at offset %zu", i);
					return KAA_ERR_INVAL;
				}
				i++;
			} else if (c == '"') {
				in_str = false;
			}
		} else if (c == '"') {
			in_str = true;
		} else if (c == '/') {
			/* yajl_tree_parse enables comments; JSON has none */
			kaa__json_errf(err, errlen, NULL, "comments are not allowed (offset %zu)",
				       i);
			return KAA_ERR_INVAL;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth) {
				kaa__json_errf(err, errlen, NULL,
					       "nesting deeper than %d at offset %zu", max_depth,
					       i);
				return KAA_ERR_INVAL;
			}
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	return KAA_OK;
}

static int cmp_key_idx(const void *a, const void *b, void *arg)
{
	const char **keys = arg;
	return strcmp(keys[*(const size_t *)a], keys[*(const size_t *)b]);
}

/* Indices of an object's members, sorted by key. Small objects use the
 * inline array so the common case does not allocate. */
typedef struct sorted_keys {
	size_t n;
	size_t *idx;
	size_t inline_idx[16];
} sorted_keys;

static void sorted_keys_init(sorted_keys *s, yajl_val obj)
{
	s->n = obj->u.object.len;
	s->idx = s->inline_idx;
	if (s->n > sizeof(s->inline_idx) / sizeof(s->inline_idx[0]))
		s->idx = kaa__xmalloc(s->n * sizeof(*s->idx));
	for (size_t i = 0; i < s->n; i++)
		s->idx[i] = i;
	qsort_r(s->idx, s->n, sizeof(*s->idx), cmp_key_idx, (void *)obj->u.object.keys);
}

static void sorted_keys_free(sorted_keys *s)
{
	if (s->idx != s->inline_idx)
		free(s->idx);
}

/* Post-parse checks: duplicate keys, number range. Depth <= max_depth. */
static int check_tree(yajl_val v, kaa__json_path *p, char *err, size_t errlen)
{
	int rc = KAA_OK;

	if (YAJL_IS_NUMBER(v)) {
		if (!kaa__json_int64(v, NULL) && !isfinite(strtod(v->u.number.r, NULL))) {
			kaa__json_errf(err, errlen, p, "number out of range");
			return KAA_ERR_INVAL;
		}
	} else if (YAJL_IS_ARRAY(v)) {
		for (size_t i = 0; i < v->u.array.len && rc == KAA_OK; i++) {
			size_t m = kaa__json_path_index(p, i);
			rc = check_tree(v->u.array.values[i], p, err, errlen);
			if (rc == KAA_OK)
				kaa__json_path_pop(p, m);
		}
	} else if (YAJL_IS_OBJECT(v)) {
		sorted_keys sk;
		sorted_keys_init(&sk, v);
		for (size_t i = 1; i < sk.n; i++) {
			const char *k = v->u.object.keys[sk.idx[i]];
			if (strcmp(v->u.object.keys[sk.idx[i - 1]], k) == 0) {
				char q[64];
				kaa__json_errf(err, errlen, p, "duplicate key %s",
					       kaa__json_quote(q, sizeof(q), k));
				sorted_keys_free(&sk);
				return KAA_ERR_INVAL;
			}
		}
		sorted_keys_free(&sk);
		for (size_t i = 0; i < v->u.object.len && rc == KAA_OK; i++) {
			size_t m = kaa__json_path_key(p, v->u.object.keys[i]);
			rc = check_tree(v->u.object.values[i], p, err, errlen);
			if (rc == KAA_OK)
				kaa__json_path_pop(p, m);
		}
	}
	return rc;
}

int kaa__json_parse(const char *json, size_t len, size_t max_bytes, int max_depth, yajl_val *out,
		    char *err, size_t errlen)
{
	char ebuf[256];
	char *copy = NULL;
	yajl_val root = NULL;
	kaa__json_path path;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (len > max_bytes) {
		kaa__json_errf(err, errlen, NULL, "document of %zu bytes exceeds the limit of %zu",
			       len, max_bytes);
		return KAA_ERR_TOO_BIG;
	}
	rc = prescan(json, len, max_depth, err, errlen);
	if (rc != KAA_OK)
		return rc;
	copy = kaa__xmalloc(len + 1); /* yajl_tree_parse needs a NUL-terminated buffer */
	memcpy(copy, json, len);
	copy[len] = '\0';
	ebuf[0] = '\0';
	root = yajl_tree_parse(copy, ebuf, sizeof(ebuf));
	if (!root) {
		/* yajl's verbose message spans lines (text excerpt + arrow) */
		char *nl = strchr(ebuf, '\n');
		if (nl)
			*nl = '\0';
		if (strstr(ebuf, "memory"))
			kaa__oom(); /* yajl's own allocation failed */
		if (!ebuf[0]) {
			rc = KAA_ERR_INVAL;
			kaa__json_errf(err, errlen, NULL, "malformed JSON");
		} else {
			rc = KAA_ERR_INVAL;
			kaa__json_errf(err, errlen, NULL, "malformed JSON: %s", ebuf);
		}
		goto out;
	}
	kaa__json_path_init(&path);
	rc = check_tree(root, &path, err, errlen);
	if (rc != KAA_OK) {
		yajl_tree_free(root);
		root = NULL;
		goto out;
	}
	*out = root;
out:
	free(copy);
	return rc;
}

/* ---- canonical form ----------------------------------------------------- */

static void *gen_malloc(void *ctx, size_t n)
{
	(void)ctx;
	return kaa__xmalloc(n);
}

static void *gen_realloc(void *ctx, void *p, size_t n)
{
	(void)ctx;
	return kaa__xrealloc(p, n);
}

static void gen_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

yajl_gen kaa__json_gen_new(void)
{
	static const yajl_alloc_funcs funcs = {gen_malloc, gen_realloc, gen_free, NULL};
	return yajl_gen_alloc(&funcs);
}

static int gen_ok(yajl_gen_status st)
{
	return st == yajl_gen_status_ok ? KAA_OK : KAA_ERR_INVAL;
}

static int gen_string(yajl_gen g, const char *s)
{
	return gen_ok(yajl_gen_string(g, (const unsigned char *)s, strlen(s)));
}

int kaa__json_gen_canonical(yajl_gen g, yajl_val v)
{
	char num[40];
	size_t n;
	int rc = KAA_OK;

	if (!v)
		return gen_ok(yajl_gen_null(g));
	switch (v->type) {
	case yajl_t_string: return gen_string(g, v->u.string);
	case yajl_t_number:
		n = number_canon(v, num, sizeof(num));
		return gen_ok(yajl_gen_number(g, num, n));
	case yajl_t_true: return gen_ok(yajl_gen_bool(g, 1));
	case yajl_t_false: return gen_ok(yajl_gen_bool(g, 0));
	case yajl_t_null: return gen_ok(yajl_gen_null(g));
	case yajl_t_array:
		rc = gen_ok(yajl_gen_array_open(g));
		for (size_t i = 0; i < v->u.array.len && rc == KAA_OK; i++)
			rc = kaa__json_gen_canonical(g, v->u.array.values[i]);
		return rc ? rc : gen_ok(yajl_gen_array_close(g));
	case yajl_t_object: {
		sorted_keys sk;
		sorted_keys_init(&sk, v);
		rc = gen_ok(yajl_gen_map_open(g));
		for (size_t i = 0; i < sk.n && rc == KAA_OK; i++) {
			rc = gen_string(g, v->u.object.keys[sk.idx[i]]);
			if (rc == KAA_OK)
				rc = kaa__json_gen_canonical(g, v->u.object.values[sk.idx[i]]);
		}
		sorted_keys_free(&sk);
		return rc ? rc : gen_ok(yajl_gen_map_close(g));
	}
	default: return KAA_ERR_INVAL;
	}
}

int kaa__json_gen_take(yajl_gen g, size_t max_bytes, char **out, size_t *outlen)
{
	const unsigned char *buf;
	size_t len;

	*out = NULL;
	if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok)
		return KAA_ERR_INTERNAL;
	if (len > max_bytes)
		return KAA_ERR_TOO_BIG;
	*out = kaa__xmalloc(len + 1);
	memcpy(*out, buf, len);
	(*out)[len] = '\0';
	if (outlen)
		*outlen = len;
	return KAA_OK;
}

int kaa__json_canonical_tree(yajl_val v, char **out, size_t *outlen)
{
	yajl_gen g = kaa__json_gen_new();
	int rc;

	*out = NULL;
	rc = kaa__json_gen_canonical(g, v);
	if (rc == KAA_OK)
		rc = kaa__json_gen_take(g, (size_t)-1, out, outlen);
	yajl_gen_free(g);
	return rc;
}

int kaa__json_canonicalize(const char *json, size_t len, char **out, size_t *outlen, char *err,
			   size_t errlen)
{
	yajl_val v;
	int rc;

	*out = NULL;
	rc = kaa__json_parse(json, len, KAA_JSON_MAX_BYTES, KAA_JSON_MAX_DEPTH, &v, err, errlen);
	if (rc != KAA_OK)
		return rc;
	rc = kaa__json_canonical_tree(v, out, outlen);
	yajl_tree_free(v);
	return rc;
}

bool kaa__json_equal(yajl_val a, yajl_val b)
{
	if (!a || !b)
		return a == b;
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case yajl_t_string: return strcmp(a->u.string, b->u.string) == 0;
	case yajl_t_number: {
		char x[40], y[40];
		size_t nx = number_canon(a, x, sizeof(x));
		size_t ny = number_canon(b, y, sizeof(y));
		return nx == ny && memcmp(x, y, nx) == 0;
	}
	case yajl_t_array:
		if (a->u.array.len != b->u.array.len)
			return false;
		for (size_t i = 0; i < a->u.array.len; i++)
			if (!kaa__json_equal(a->u.array.values[i], b->u.array.values[i]))
				return false;
		return true;
	case yajl_t_object: {
		sorted_keys sa, sb;
		bool eq = true;
		if (a->u.object.len != b->u.object.len)
			return false;
		sorted_keys_init(&sa, a);
		sorted_keys_init(&sb, b);
		for (size_t i = 0; i < sa.n && eq; i++) {
			size_t ia = sa.idx[i], ib = sb.idx[i];
			eq = strcmp(a->u.object.keys[ia], b->u.object.keys[ib]) == 0 &&
			     kaa__json_equal(a->u.object.values[ia], b->u.object.values[ib]);
		}
		sorted_keys_free(&sa);
		sorted_keys_free(&sb);
		return eq;
	}
	default: return true; /* true, false, null */
	}
}

int kaa__json_sha256_hex(const void *data, size_t len, char hex[KAA_SHA256_HEX_SIZE])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	hex[0] = '\0';
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return KAA_ERR_INTERNAL;
	for (unsigned int i = 0; i < mdlen; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[64] = '\0';
	return KAA_OK;
}

/* ---- configuration merge ----------------------------------------------- */

int kaa__json_merge_gen(yajl_gen g, yajl_val const *vals, size_t n)
{
	size_t top = n, lo, nobj = 0;
	yajl_val *sub, *objs;
	sorted_keys *sk;
	size_t *pos;
	int rc;

	while (top > 0 && !vals[top - 1])
		top--;
	if (top == 0)
		return gen_ok(yajl_gen_null(g)); /* unreachable from the public entry */
	top--;
	if (!YAJL_IS_OBJECT(vals[top]))
		return kaa__json_gen_canonical(g, vals[top]);
	/* the run of objects from top down to the first present non-object */
	lo = top;
	while (lo > 0 && (!vals[lo - 1] || YAJL_IS_OBJECT(vals[lo - 1])))
		lo--;
	for (size_t i = lo; i <= top; i++)
		if (vals[i])
			nobj++;
	objs = kaa__xcalloc(nobj, sizeof(*objs));
	sk = kaa__xcalloc(nobj, sizeof(*sk));
	pos = kaa__xcalloc(nobj, sizeof(*pos));
	sub = kaa__xcalloc(nobj, sizeof(*sub));
	nobj = 0;
	for (size_t i = lo; i <= top; i++) {
		if (!vals[i])
			continue;
		objs[nobj] = vals[i];
		sorted_keys_init(&sk[nobj], vals[i]);
		nobj++;
	}
	rc = gen_ok(yajl_gen_map_open(g));
	/* k-way merge of the sorted key lists, lowest weight first */
	while (rc == KAA_OK) {
		const char *min = NULL;
		for (size_t j = 0; j < nobj; j++) {
			if (pos[j] < sk[j].n) {
				const char *k = objs[j]->u.object.keys[sk[j].idx[pos[j]]];
				if (!min || strcmp(k, min) < 0)
					min = k;
			}
		}
		if (!min)
			break;
		for (size_t j = 0; j < nobj; j++) {
			sub[j] = NULL;
			if (pos[j] < sk[j].n) {
				size_t ix = sk[j].idx[pos[j]];
				if (strcmp(objs[j]->u.object.keys[ix], min) == 0) {
					sub[j] = objs[j]->u.object.values[ix];
					pos[j]++;
				}
			}
		}
		rc = gen_string(g, min);
		if (rc == KAA_OK)
			rc = kaa__json_merge_gen(g, sub, nobj);
	}
	if (rc == KAA_OK)
		rc = gen_ok(yajl_gen_map_close(g));
	for (size_t j = 0; j < nobj; j++)
		sorted_keys_free(&sk[j]);
	free(objs);
	free(sk);
	free(pos);
	free(sub);
	return rc;
}

typedef struct weighted {
	size_t index;
	int64_t weight;
} weighted;

static int cmp_weighted(const void *a, const void *b)
{
	const weighted *x = a, *y = b;
	if (x->weight != y->weight)
		return x->weight < y->weight ? -1 : 1;
	return x->index < y->index ? -1 : (x->index > y->index);
}

int kaa__config_merge(const kaa__config_part *parts, size_t n, char **out, size_t *outlen,
		      char hash[KAA_SHA256_HEX_SIZE], char *err, size_t errlen)
{
	weighted *order = NULL;
	yajl_val *trees = NULL, *sorted = NULL;
	yajl_gen g = NULL;
	size_t len = 0;
	int rc = KAA_OK;

	*out = NULL;
	hash[0] = '\0';
	if (err && errlen)
		err[0] = '\0';
	order = kaa__xcalloc(n, sizeof(*order));
	trees = kaa__xcalloc(n, sizeof(*trees));
	sorted = kaa__xcalloc(n, sizeof(*sorted));
	g = kaa__json_gen_new();
	for (size_t i = 0; i < n; i++) {
		char perr[KAA_JSON_PATH_MAX + 128];
		size_t pl;
		const char *msg;
		rc = kaa__json_parse(parts[i].json, parts[i].len, KAA_JSON_MAX_BYTES,
				     KAA_JSON_MAX_DEPTH, &trees[i], perr, sizeof(perr));
		if (rc != KAA_OK) {
			msg = kaa__json_err_msg(perr, &pl);
			if (err && errlen)
				snprintf(err, errlen, "%.*s: parts[%zu]: %s", (int)(pl ? pl : 1),
					 pl ? perr : "$", i, msg);
			goto out;
		}
		order[i].index = i;
		order[i].weight = parts[i].weight;
	}
	qsort(order, n, sizeof(*order), cmp_weighted);
	for (size_t i = 0; i < n; i++)
		sorted[i] = trees[order[i].index];
	if (n == 0) {
		rc = gen_ok(yajl_gen_map_open(g));
		if (rc == KAA_OK)
			rc = gen_ok(yajl_gen_map_close(g));
	} else {
		rc = kaa__json_merge_gen(g, sorted, n);
	}
	if (rc == KAA_OK)
		rc = kaa__json_gen_take(g, KAA_JSON_MAX_BYTES, out, &len);
	if (rc == KAA_ERR_TOO_BIG)
		kaa__json_errf(err, errlen, NULL, "merged configuration exceeds %d bytes",
			       KAA_JSON_MAX_BYTES);
	if (rc == KAA_OK)
		rc = kaa__json_sha256_hex(*out, len, hash);
	if (rc == KAA_OK && outlen)
		*outlen = len;
out:
	if (rc != KAA_OK) {
		free(*out);
		*out = NULL;
		hash[0] = '\0';
	}
	for (size_t i = 0; trees && i < n; i++)
		yajl_tree_free(trees[i]);
	free(trees);
	free(sorted);
	free(order);
	if (g)
		yajl_gen_free(g);
	return rc;
}

/* ---- RFC 7386 merge patch ----------------------------------------------- */

/* Emits the patch value with its object members recursively patched onto
 * nothing: null members dropped (MergePatch({}, patch) for objects). */
static int gen_patch_onto_nothing(yajl_gen g, yajl_val patch)
{
	return kaa__json_merge_patch_apply_gen(g, NULL, patch);
}

int kaa__json_merge_patch_apply_gen(yajl_gen g, yajl_val target, yajl_val patch)
{
	sorted_keys st, sp;
	size_t i = 0, j = 0, nt;
	int rc;

	if (!YAJL_IS_OBJECT(patch))
		return kaa__json_gen_canonical(g, patch);
	if (!YAJL_IS_OBJECT(target))
		target = NULL; /* treated as {} */
	sorted_keys_init(&sp, patch);
	st.n = 0;
	st.idx = st.inline_idx;
	if (target)
		sorted_keys_init(&st, target);
	nt = st.n;
	rc = gen_ok(yajl_gen_map_open(g));
	while (rc == KAA_OK && (i < nt || j < sp.n)) {
		const char *kt = i < nt ? target->u.object.keys[st.idx[i]] : NULL;
		const char *kp = j < sp.n ? patch->u.object.keys[sp.idx[j]] : NULL;
		int c = !kt ? 1 : !kp ? -1 : strcmp(kt, kp);
		if (c < 0) { /* only in target: kept */
			rc = gen_string(g, kt);
			if (rc == KAA_OK)
				rc = kaa__json_gen_canonical(g, target->u.object.values[st.idx[i]]);
			i++;
			continue;
		}
		yajl_val pv = patch->u.object.values[sp.idx[j]];
		yajl_val tv = c == 0 ? target->u.object.values[st.idx[i]] : NULL;
		if (c == 0)
			i++;
		j++;
		if (YAJL_IS_NULL(pv))
			continue; /* delete */
		rc = gen_string(g, kp);
		if (rc == KAA_OK)
			rc = tv ? kaa__json_merge_patch_apply_gen(g, tv, pv)
				: gen_patch_onto_nothing(g, pv);
	}
	if (rc == KAA_OK)
		rc = gen_ok(yajl_gen_map_close(g));
	sorted_keys_free(&st);
	sorted_keys_free(&sp);
	return rc;
}

/* Finds a null object member outside arrays: such a value cannot be the
 * result of applying a merge patch to a non-object. */
static bool find_null_member(yajl_val v, kaa__json_path *p)
{
	if (!YAJL_IS_OBJECT(v))
		return false;
	for (size_t i = 0; i < v->u.object.len; i++) {
		size_t m = kaa__json_path_key(p, v->u.object.keys[i]);
		if (YAJL_IS_NULL(v->u.object.values[i]) ||
		    find_null_member(v->u.object.values[i], p))
			return true;
		kaa__json_path_pop(p, m);
	}
	return false;
}

static int diff_gen(yajl_gen g, yajl_val old, yajl_val new_, kaa__json_path *p, char *err,
		    size_t errlen)
{
	sorted_keys so, sn;
	size_t i = 0, j = 0;
	int rc;

	if (!YAJL_IS_OBJECT(new_))
		return kaa__json_gen_canonical(g, new_);
	if (!YAJL_IS_OBJECT(old)) {
		if (find_null_member(new_, p)) {
			kaa__json_errf(err, errlen, p,
				       "new document: null member cannot be expressed in a "
				       "merge patch");
			return KAA_ERR_INVAL;
		}
		return kaa__json_gen_canonical(g, new_);
	}
	sorted_keys_init(&so, old);
	sorted_keys_init(&sn, new_);
	rc = gen_ok(yajl_gen_map_open(g));
	while (rc == KAA_OK && (i < so.n || j < sn.n)) {
		const char *ko = i < so.n ? old->u.object.keys[so.idx[i]] : NULL;
		const char *kn = j < sn.n ? new_->u.object.keys[sn.idx[j]] : NULL;
		int c = !ko ? 1 : !kn ? -1 : strcmp(ko, kn);
		if (c < 0) { /* removed */
			rc = gen_string(g, ko);
			if (rc == KAA_OK)
				rc = gen_ok(yajl_gen_null(g));
			i++;
			continue;
		}
		yajl_val nv = new_->u.object.values[sn.idx[j]];
		yajl_val ov = c == 0 ? old->u.object.values[so.idx[i]] : NULL;
		if (c == 0)
			i++;
		j++;
		if (ov && kaa__json_equal(ov, nv))
			continue;
		size_t m = kaa__json_path_key(p, kn);
		if (YAJL_IS_NULL(nv)) {
			kaa__json_errf(err, errlen, p,
				       "new document: null member cannot be expressed in a "
				       "merge patch");
			rc = KAA_ERR_INVAL;
			break;
		}
		rc = gen_string(g, kn);
		if (rc == KAA_OK)
			rc = diff_gen(g, ov, nv, p, err, errlen);
		if (rc == KAA_OK)
			kaa__json_path_pop(p, m);
	}
	if (rc == KAA_OK)
		rc = gen_ok(yajl_gen_map_close(g));
	sorted_keys_free(&so);
	sorted_keys_free(&sn);
	return rc;
}

int kaa__json_merge_patch_diff_gen(yajl_gen g, yajl_val old, yajl_val new_, char *err,
				   size_t errlen)
{
	kaa__json_path p;

	kaa__json_path_init(&p);
	return diff_gen(g, old, new_, &p, err, errlen);
}

/* Parses one named input, prefixing its errors with the name. */
static int parse_named(const char *what, const char *json, size_t len, yajl_val *out, char *err,
		       size_t errlen)
{
	char perr[KAA_JSON_PATH_MAX + 128];
	size_t pl;
	const char *msg;
	int rc = kaa__json_parse(json, len, KAA_JSON_MAX_BYTES, KAA_JSON_MAX_DEPTH, out, perr,
				 sizeof(perr));

	if (rc != KAA_OK && err && errlen) {
		msg = kaa__json_err_msg(perr, &pl);
		snprintf(err, errlen, "%.*s: %s document: %s", (int)(pl ? pl : 1), pl ? perr : "$",
			 what, msg);
	}
	return rc;
}

int kaa__json_merge_patch_apply(const char *target, size_t tlen, const char *patch, size_t plen,
				char **out, size_t *outlen, char *err, size_t errlen)
{
	yajl_val t = NULL, p = NULL;
	yajl_gen g = NULL;
	int rc;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	if (target) {
		rc = parse_named("target", target, tlen, &t, err, errlen);
		if (rc != KAA_OK)
			goto out;
	}
	rc = parse_named("patch", patch, plen, &p, err, errlen);
	if (rc != KAA_OK)
		goto out;
	g = kaa__json_gen_new();
	rc = kaa__json_merge_patch_apply_gen(g, t, p);
	if (rc == KAA_OK)
		rc = kaa__json_gen_take(g, KAA_JSON_MAX_BYTES, out, outlen);
	if (rc == KAA_ERR_TOO_BIG)
		kaa__json_errf(err, errlen, NULL, "result exceeds %d bytes", KAA_JSON_MAX_BYTES);
out:
	if (g)
		yajl_gen_free(g);
	yajl_tree_free(t);
	yajl_tree_free(p);
	return rc;
}

int kaa__json_merge_patch_diff(const char *old, size_t olen, const char *new_, size_t nlen,
			       char **patch, size_t *patchlen, char *err, size_t errlen)
{
	yajl_val o = NULL, n = NULL;
	yajl_gen g = NULL;
	int rc;

	*patch = NULL;
	if (err && errlen)
		err[0] = '\0';
	rc = parse_named("old", old, olen, &o, err, errlen);
	if (rc != KAA_OK)
		goto out;
	rc = parse_named("new", new_, nlen, &n, err, errlen);
	if (rc != KAA_OK)
		goto out;
	g = kaa__json_gen_new();
	rc = kaa__json_merge_patch_diff_gen(g, o, n, err, errlen);
	if (rc == KAA_OK)
		rc = kaa__json_gen_take(g, KAA_JSON_MAX_BYTES, patch, patchlen);
	if (rc == KAA_ERR_TOO_BIG)
		kaa__json_errf(err, errlen, NULL, "patch exceeds %d bytes", KAA_JSON_MAX_BYTES);
out:
	if (g)
		yajl_gen_free(g);
	yajl_tree_free(o);
	yajl_tree_free(n);
	return rc;
}
