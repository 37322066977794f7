/* A small bounded JSON tree for the SDK (see sdk_internal.h); the SDK links
 * no JSON library so that a device needs only protobuf-c and OpenSSL. */
#include "sdk_internal.h"

#include "base/buf.h"
#include "base/error.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
	const char *s;
	size_t len, pos;
	unsigned max_depth;
} parser;

void kaa__sj_free(kaa__sj *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		if (v->keys)
			free(v->keys[i]);
		if (v->vals)
			kaa__sj_free(v->vals[i]);
	}
	free(v->keys);
	free(v->vals);
	free(v->str);
	free(v);
}

static void skip_ws(parser *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
				   p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return KAA_ERR_INVAL;
	}
	*out = v;
	return KAA_OK;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char)(0xF0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Parses a string starting at the opening quote; the decoded value is at
 * most as long as the raw text. */
static int parse_string(parser *p, char **out)
{
	size_t start = ++p->pos;
	size_t end = start;
	char *o, *w;

	while (end < p->len && p->s[end] != '"') {
		if (p->s[end] == '\\')
			end++;
		end++;
	}
	if (end >= p->len)
		return KAA_ERR_INVAL;
	o = malloc(end - start + 1);
	if (!o)
		return KAA_ERR_NOMEM;
	w = o;
	for (size_t i = start; i < end; i++) {
		unsigned char c = (unsigned char)p->s[i];
		if (c < 0x20)
			goto bad;
		if (c != '\\') {
			*w++ = (char)c;
			continue;
		}
		c = (unsigned char)p->s[++i];
		switch (c) {
		case '"': *w++ = '"'; break;
		case '\\': *w++ = '\\'; break;
		case '/': *w++ = '/'; break;
		case 'b': *w++ = '\b'; break;
		case 'f': *w++ = '\f'; break;
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 't': *w++ = '\t'; break;
		case 'u': {
			unsigned cp, lo;
			if (end - i < 5 || hex4(p->s + i + 1, &cp) != KAA_OK)
				goto bad;
			i += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (end - i < 7 || p->s[i + 1] != '\\' || p->s[i + 2] != 'u' ||
				    hex4(p->s + i + 3, &lo) != KAA_OK || lo < 0xDC00 || lo > 0xDFFF)
					goto bad;
				i += 6;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
				goto bad;
			}
			if (cp == 0)
				goto bad;
			/* \uXXXX is 6 raw bytes, its UTF-8 at most 4 (a pair: 12 -> 4) */
			w += put_utf8(w, cp);
			break;
		}
		default: goto bad;
		}
	}
	*w = '\0';
	p->pos = end + 1;
	*out = o;
	return KAA_OK;
bad:
	free(o);
	return KAA_ERR_INVAL;
}

static int parse_number(parser *p, char **out)
{
	size_t st = p->pos, i = p->pos;
	const char *s = p->s;
	char *lit, *end;
	double d;

	if (i < p->len && s[i] == '-')
		i++;
	if (i >= p->len)
		return KAA_ERR_INVAL;
	if (s[i] == '0') {
		i++;
	} else if (s[i] >= '1' && s[i] <= '9') {
		while (i < p->len && s[i] >= '0' && s[i] <= '9')
			i++;
	} else {
		return KAA_ERR_INVAL;
	}
	if (i < p->len && s[i] == '.') {
		i++;
		if (i >= p->len || s[i] < '0' || s[i] > '9')
			return KAA_ERR_INVAL;
		while (i < p->len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < p->len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= p->len || s[i] < '0' || s[i] > '9')
			return KAA_ERR_INVAL;
		while (i < p->len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	lit = strndup(s + st, i - st);
	if (!lit)
		return KAA_ERR_NOMEM;
	d = strtod(lit, &end);
	if (!isfinite(d)) {
		free(lit);
		return KAA_ERR_INVAL;
	}
	p->pos = i;
	*out = lit;
	return KAA_OK;
}

static int grow(kaa__sj *v, size_t *cap, bool keys)
{
	size_t nc = *cap ? *cap * 2 : 4;
	kaa__sj **nv = realloc(v->vals, nc * sizeof(*nv));
	if (!nv)
		return KAA_ERR_NOMEM;
	v->vals = nv;
	if (keys) {
		char **nk = realloc(v->keys, nc * sizeof(*nk));
		if (!nk)
			return KAA_ERR_NOMEM;
		v->keys = nk;
	}
	*cap = nc;
	return KAA_OK;
}

static int parse_value(parser *p, unsigned depth, kaa__sj **out)
{
	kaa__sj *v;
	size_t cap = 0;
	int rc = KAA_OK;

	skip_ws(p);
	if (p->pos >= p->len)
		return KAA_ERR_INVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return KAA_ERR_NOMEM;
	char c = p->s[p->pos];
	if (c == '{' || c == '[') {
		bool obj = c == '{';
		if (depth + 1 > p->max_depth) {
			rc = KAA_ERR_INVAL;
			goto out;
		}
		v->type = obj ? KAA__SJ_OBJECT : KAA__SJ_ARRAY;
		p->pos++;
		skip_ws(p);
		if (p->pos < p->len && p->s[p->pos] == (obj ? '}' : ']')) {
			p->pos++;
			goto out;
		}
		for (;;) {
			char *key = NULL;
			kaa__sj *item = NULL;
			skip_ws(p);
			if (obj) {
				if (p->pos >= p->len || p->s[p->pos] != '"') {
					rc = KAA_ERR_INVAL;
					goto out;
				}
				rc = parse_string(p, &key);
				if (rc != KAA_OK)
					goto out;
				for (size_t i = 0; i < v->n; i++)
					if (strcmp(v->keys[i], key) == 0)
						rc = KAA_ERR_INVAL; /* duplicate key */
				skip_ws(p);
				if (rc == KAA_OK && (p->pos >= p->len || p->s[p->pos] != ':'))
					rc = KAA_ERR_INVAL;
				if (rc != KAA_OK) {
					free(key);
					goto out;
				}
				p->pos++;
			}
			rc = parse_value(p, depth + 1, &item);
			if (rc == KAA_OK && v->n == cap)
				rc = grow(v, &cap, obj);
			if (rc != KAA_OK) {
				free(key);
				kaa__sj_free(item);
				goto out;
			}
			if (obj)
				v->keys[v->n] = key;
			v->vals[v->n++] = item;
			skip_ws(p);
			if (p->pos < p->len && p->s[p->pos] == ',') {
				p->pos++;
				continue;
			}
			if (p->pos < p->len && p->s[p->pos] == (obj ? '}' : ']')) {
				p->pos++;
				break;
			}
			rc = KAA_ERR_INVAL;
			goto out;
		}
	} else if (c == '"') {
		v->type = KAA__SJ_STRING;
		rc = parse_string(p, &v->str);
	} else if (c == '-' || (c >= '0' && c <= '9')) {
		v->type = KAA__SJ_NUMBER;
		rc = parse_number(p, &v->str);
	} else if (p->len - p->pos >= 4 && memcmp(p->s + p->pos, "true", 4) == 0) {
		v->type = KAA__SJ_TRUE;
		p->pos += 4;
	} else if (p->len - p->pos >= 5 && memcmp(p->s + p->pos, "false", 5) == 0) {
		v->type = KAA__SJ_FALSE;
		p->pos += 5;
	} else if (p->len - p->pos >= 4 && memcmp(p->s + p->pos, "null", 4) == 0) {
		v->type = KAA__SJ_NULL;
		p->pos += 4;
	} else {
		rc = KAA_ERR_INVAL;
	}
out:
	if (rc != KAA_OK) {
		kaa__sj_free(v);
		v = NULL;
	}
	*out = v;
	return rc;
}

int kaa__sj_parse(const char *s, size_t len, size_t max_bytes, unsigned max_depth, kaa__sj **out)
{
	parser p = {.s = s, .len = len, .max_depth = max_depth};
	int rc;

	*out = NULL;
	if (!s)
		return KAA_ERR_INVAL;
	if (len > max_bytes)
		return KAA_ERR_TOO_BIG;
	if (memchr(s, '\0', len))
		return KAA_ERR_INVAL;
	rc = parse_value(&p, 0, out);
	if (rc != KAA_OK)
		return rc;
	skip_ws(&p);
	if (p.pos != p.len) {
		kaa__sj_free(*out);
		*out = NULL;
		return KAA_ERR_INVAL;
	}
	return KAA_OK;
}

const kaa__sj *kaa__sj_get(const kaa__sj *obj, const char *key)
{
	if (!obj || obj->type != KAA__SJ_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->n; i++)
		if (strcmp(obj->keys[i], key) == 0)
			return obj->vals[i];
	return NULL;
}

/* ---- canonical form ---------------------------------------------------- */

static void sb_str(kaa__buf *b, const char *s)
{
	static const char hexd[] = "0123456789ABCDEF";
	kaa__buf_put(b, "\"", 1);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		char e[7];
		switch (*c) {
		case '"': kaa__buf_put(b, "\\\"", 2); break;
		case '\\': kaa__buf_put(b, "\\\\", 2); break;
		case '\b': kaa__buf_put(b, "\\b", 2); break;
		case '\f': kaa__buf_put(b, "\\f", 2); break;
		case '\n': kaa__buf_put(b, "\\n", 2); break;
		case '\r': kaa__buf_put(b, "\\r", 2); break;
		case '\t': kaa__buf_put(b, "\\t", 2); break;
		default:
			if (*c < 0x20) {
				memcpy(e, "\\u00", 4);
				e[4] = hexd[*c >> 4];
				e[5] = hexd[*c & 15];
				kaa__buf_put(b, e, 6);
			} else {
				kaa__buf_put(b, (const char *)c, 1);
			}
		}
	}
	kaa__buf_put(b, "\"", 1);
}

static void sb_number(kaa__buf *b, const char *lit)
{
	char buf[40];
	double d;

	if (!strpbrk(lit, ".eE")) {
		char *end;
		errno = 0;
		long long x = strtoll(lit, &end, 10);
		if (!errno && *end == '\0') {
			snprintf(buf, sizeof(buf), "%lld", x);
			kaa__buf_put(b, buf, strlen(buf));
			return;
		}
	}
	d = strtod(lit, NULL);
	if (!isfinite(d))
		d = 0.0;
	if (d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
		snprintf(buf, sizeof(buf), "%lld", (long long)d);
	} else {
		for (int prec = 1; prec <= 17; prec++) {
			snprintf(buf, sizeof(buf), "%.*g", prec, d);
			if (strtod(buf, NULL) == d)
				break;
		}
	}
	kaa__buf_put(b, buf, strlen(buf));
}

static int key_cmp(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;
	return strcmp(*x, *y);
}

static void sb_canon(kaa__buf *b, const kaa__sj *v)
{
	switch (v->type) {
	case KAA__SJ_NULL: kaa__buf_put(b, "null", 4); break;
	case KAA__SJ_TRUE: kaa__buf_put(b, "true", 4); break;
	case KAA__SJ_FALSE: kaa__buf_put(b, "false", 5); break;
	case KAA__SJ_NUMBER: sb_number(b, v->str); break;
	case KAA__SJ_STRING: sb_str(b, v->str); break;
	case KAA__SJ_ARRAY:
		kaa__buf_put(b, "[", 1);
		for (size_t i = 0; i < v->n; i++) {
			if (i)
				kaa__buf_put(b, ",", 1);
			sb_canon(b, v->vals[i]);
		}
		kaa__buf_put(b, "]", 1);
		break;
	case KAA__SJ_OBJECT: {
		/* sort pointers to keys; strcmp compares bytes as unsigned char */
		const char **ks = malloc((v->n ? v->n : 1) * sizeof(*ks));
		if (!ks) {
			kaa__buf_fail(b, KAA_ERR_NOMEM);
			return;
		}
		for (size_t i = 0; i < v->n; i++)
			ks[i] = v->keys[i];
		qsort(ks, v->n, sizeof(*ks), key_cmp);
		kaa__buf_put(b, "{", 1);
		for (size_t i = 0; i < v->n; i++) {
			if (i)
				kaa__buf_put(b, ",", 1);
			sb_str(b, ks[i]);
			kaa__buf_put(b, ":", 1);
			sb_canon(b, kaa__sj_get(v, ks[i]));
		}
		kaa__buf_put(b, "}", 1);
		free(ks);
		break;
	}
	}
}

int kaa__sj_canonical(const kaa__sj *v, char **out, size_t *len)
{
	kaa__buf b = {0};

	sb_canon(&b, v);
	return kaa__buf_take(&b, out, len);
}

/* ---- merge patch ---------------------------------------------------------- */

static kaa__sj *sj_clone(const kaa__sj *v)
{
	kaa__sj *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->type = v->type;
	if (v->str && !(c->str = strdup(v->str)))
		goto fail;
	if (v->n) {
		c->vals = calloc(v->n, sizeof(*c->vals));
		if (!c->vals)
			goto fail;
		if (v->keys && !(c->keys = calloc(v->n, sizeof(*c->keys))))
			goto fail;
		for (size_t i = 0; i < v->n; i++) {
			c->n = i + 1;
			if (v->keys && !(c->keys[i] = strdup(v->keys[i])))
				goto fail;
			if (!(c->vals[i] = sj_clone(v->vals[i])))
				goto fail;
		}
	}
	return c;
fail:
	kaa__sj_free(c);
	return NULL;
}

int kaa__sj_merge_patch(const kaa__sj *target, const kaa__sj *patch, kaa__sj **out)
{
	kaa__sj *res;

	*out = NULL;
	if (patch->type != KAA__SJ_OBJECT) {
		*out = sj_clone(patch);
		return *out ? KAA_OK : KAA_ERR_NOMEM;
	}
	if (target && target->type == KAA__SJ_OBJECT) {
		res = sj_clone(target);
	} else {
		res = calloc(1, sizeof(*res));
		if (res)
			res->type = KAA__SJ_OBJECT;
	}
	if (!res)
		return KAA_ERR_NOMEM;
	for (size_t i = 0; i < patch->n; i++) {
		const char *k = patch->keys[i];
		const kaa__sj *pv = patch->vals[i];
		size_t j;
		for (j = 0; j < res->n; j++)
			if (strcmp(res->keys[j], k) == 0)
				break;
		if (pv->type == KAA__SJ_NULL) {
			if (j < res->n) {
				free(res->keys[j]);
				kaa__sj_free(res->vals[j]);
				memmove(res->keys + j, res->keys + j + 1,
					(res->n - j - 1) * sizeof(*res->keys));
				memmove(res->vals + j, res->vals + j + 1,
					(res->n - j - 1) * sizeof(*res->vals));
				res->n--;
			}
			continue;
		}
		kaa__sj *nv;
		int rc = kaa__sj_merge_patch(j < res->n ? res->vals[j] : NULL, pv, &nv);
		if (rc != KAA_OK) {
			kaa__sj_free(res);
			return rc;
		}
		if (j < res->n) {
			kaa__sj_free(res->vals[j]);
			res->vals[j] = nv;
			continue;
		}
		char *kc = strdup(k);
		char **nk = kc ? realloc(res->keys, (res->n + 1) * sizeof(*nk)) : NULL;
		if (nk)
			res->keys = nk;
		kaa__sj **nvals = nk ? realloc(res->vals, (res->n + 1) * sizeof(*nvals)) : NULL;
		if (!nvals) {
			free(kc);
			kaa__sj_free(nv);
			kaa__sj_free(res);
			return KAA_ERR_NOMEM;
		}
		res->vals = nvals;
		res->keys[res->n] = kc;
		res->vals[res->n++] = nv;
	}
	*out = res;
	return KAA_OK;
}

int kaa__sdk_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return KAA_ERR_INTERNAL;
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return KAA_OK;
}

int kaa__sj_hash_text(const char *s, size_t len, char hex[65])
{
	kaa__sj *v = NULL;
	char *c = NULL;
	size_t cl = 0;
	int rc = kaa__sj_parse(s, len, 1024 * 1024, 64, &v);

	if (rc == KAA_OK)
		rc = kaa__sj_canonical(v, &c, &cl);
	if (rc == KAA_OK)
		rc = kaa__sdk_sha256_hex(c, cl, hex);
	free(c);
	kaa__sj_free(v);
	return rc;
}
