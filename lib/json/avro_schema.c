#include "json/avro_schema.h"

#include "base/alloc.h"
#include "base/error.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

typedef enum av_kind {
	AV_NULL,
	AV_BOOLEAN,
	AV_INT,
	AV_LONG,
	AV_FLOAT,
	AV_DOUBLE,
	AV_BYTES,
	AV_STRING,
	AV_RECORD,
	AV_ENUM,
	AV_ARRAY,
	AV_MAP,
	AV_UNION,
	AV_FIXED,
} av_kind;

static const char *const kind_names[] = {
	"null",   "boolean", "int",  "long",  "float", "double", "bytes",
	"string", "record",  "enum", "array", "map",   "union",  "fixed",
};

typedef struct av_node av_node;

typedef struct av_field {
	const char *name; /* points into the schema's JSON tree */
	const av_node *type;
	yajl_val def; /* NULL: no default */
} av_field;

struct av_node {
	av_kind kind;
	char *fullname; /* record, enum, fixed */
	char *space;    /* namespace of a named type ("" for none) */
	/* record */
	av_field *fields;
	size_t nfields;
	size_t *by_name; /* field indices sorted by name */
	size_t nrequired;
	/* enum */
	const char **symbols; /* point into the tree */
	size_t nsymbols;
	size_t *sym_sorted;
	const char *enum_default;
	/* array items, map values */
	const av_node *items;
	/* union */
	const av_node **branches;
	size_t nbranches;
	/* fixed */
	size_t size;
};

/* Primitive types are shared, immutable, and never freed. */
static const av_node prims[] = {
	{.kind = AV_NULL},  {.kind = AV_BOOLEAN}, {.kind = AV_INT},   {.kind = AV_LONG},
	{.kind = AV_FLOAT}, {.kind = AV_DOUBLE},  {.kind = AV_BYTES}, {.kind = AV_STRING},
};

struct kaa__avro_schema {
	yajl_val tree;
	av_node **nodes; /* every allocated node, in definition order */
	size_t nnodes;
	size_t cap;
	const av_node *root;
};

static bool is_named(const av_node *t)
{
	return t->kind == AV_RECORD || t->kind == AV_ENUM || t->kind == AV_FIXED;
}

/* "int", "record org.x.R", "one of [...]" is built by the caller */
static const char *type_desc(const av_node *t, char *buf, size_t n)
{
	if (is_named(t))
		snprintf(buf, n, "%s %s", kind_names[t->kind], t->fullname);
	else
		snprintf(buf, n, "%s", kind_names[t->kind]);
	return buf;
}

static const char *json_kind(yajl_val v)
{
	if (!v)
		return "nothing";
	switch (v->type) {
	case yajl_t_string: return "string";
	case yajl_t_number: return "number";
	case yajl_t_object: return "object";
	case yajl_t_array: return "array";
	case yajl_t_true:
	case yajl_t_false: return "boolean";
	case yajl_t_null: return "null";
	default: return "unknown";
	}
}

/* ---- value checking (shared by schema defaults and documents) ------- */

typedef struct vctx {
	kaa__json_path path;
	char *err; /* NULL while trying union branches quietly */
	size_t errlen;
	long steps;
} vctx;

static int check(vctx *c, const av_node *t, yajl_val v, int depth);

#define VFAIL(c, ...)                                                                   \
	do {                                                                            \
		if ((c)->err)                                                           \
			kaa__json_errf((c)->err, (c)->errlen, &(c)->path, __VA_ARGS__); \
		return KAA_ERR_INVAL;                                                   \
	} while (0)

static int expected(vctx *c, const av_node *t, yajl_val v)
{
	char d[KAA_AVRO_MAX_NAME + 16];
	VFAIL(c, "expected %s, got %s", type_desc(t, d, sizeof(d)), json_kind(v));
}

/* Length in characters of a bytes/fixed string (each U+0000..U+00FF), or
 * -1 when some character is above U+00FF. Input is valid UTF-8. */
static long byte_chars(const char *s)
{
	long n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; n++) {
		if (*p < 0x80) {
			p++;
		} else if ((*p == 0xC2 || *p == 0xC3) && (p[1] & 0xC0) == 0x80) {
			p += 2;
		} else {
			return -1;
		}
	}
	return n;
}

/* Binary search of key in names[] through idx[] (indices sorted by name). */
static const size_t *bsearch_idx(const char *key, const size_t *idx, size_t n,
				 const char *const *names)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, names[idx[mid]]);
		if (c == 0)
			return &idx[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* The field called name, by binary search over by_name; NULL if none. */
static const av_field *find_field(const av_node *r, const char *name)
{
	size_t lo = 0, hi = r->nfields;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const av_field *f = &r->fields[r->by_name[mid]];
		int c = strcmp(name, f->name);
		if (c == 0)
			return f;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static bool kind_accepts(const av_node *t, yajl_val v)
{
	switch (t->kind) {
	case AV_NULL: return YAJL_IS_NULL(v);
	case AV_BOOLEAN: return YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v);
	case AV_INT:
	case AV_LONG:
	case AV_FLOAT:
	case AV_DOUBLE: return YAJL_IS_NUMBER(v);
	case AV_BYTES:
	case AV_STRING:
	case AV_ENUM:
	case AV_FIXED: return YAJL_IS_STRING(v);
	case AV_ARRAY: return YAJL_IS_ARRAY(v);
	case AV_MAP:
	case AV_RECORD: return YAJL_IS_OBJECT(v);
	default: return false;
	}
}

/* The index of the first union branch that accepts v (quietly), or -1.
 * Returns KAA_ERR_INVAL (with a message, if c->err) when the step budget
 * ran out during the trials. */
static int union_branch(vctx *c, const av_node *u, yajl_val v, int depth, long *which)
{
	char *saved = c->err;
	int rc = KAA_OK;

	*which = -1;
	c->err = NULL;
	for (size_t i = 0; i < u->nbranches; i++) {
		if (!kind_accepts(u->branches[i], v))
			continue;
		size_t mark = c->path.len;
		rc = check(c, u->branches[i], v, depth);
		kaa__json_path_pop(&c->path, mark);
		if (rc == KAA_OK) {
			*which = (long)i;
			break;
		}
		if (c->steps > KAA_AVRO_MAX_STEPS)
			break;
	}
	c->err = saved;
	if (*which < 0 && c->steps > KAA_AVRO_MAX_STEPS)
		VFAIL(c, "document too complex to validate (over %d checks)", KAA_AVRO_MAX_STEPS);
	return KAA_OK;
}

static int check_union(vctx *c, const av_node *u, yajl_val v, int depth)
{
	long which, only = -1;
	size_t ncompat = 0;
	char list[512];
	size_t w = 0;
	int rc = union_branch(c, u, v, depth, &which);

	if (rc != KAA_OK || which >= 0)
		return rc;
	if (!c->err)
		return KAA_ERR_INVAL;
	for (size_t i = 0; i < u->nbranches; i++) {
		if (kind_accepts(u->branches[i], v)) {
			ncompat++;
			only = (long)i;
		}
	}
	if (ncompat == 1)
		return check(c, u->branches[only], v, depth); /* its precise error */
	list[0] = '\0';
	for (size_t i = 0; i < u->nbranches && w + 1 < sizeof(list); i++) {
		const av_node *b = u->branches[i];
		int n = snprintf(list + w, sizeof(list) - w, "%s%s", i ? ", " : "",
				 is_named(b) ? b->fullname : kind_names[b->kind]);
		if (n < 0)
			break;
		w += (size_t)n;
	}
	VFAIL(c, "expected one of [%s], got %s", list, json_kind(v));
}

static int check_record(vctx *c, const av_node *t, yajl_val v, int depth)
{
	size_t present_required = 0;
	char q[64];
	int rc;

	if (!YAJL_IS_OBJECT(v))
		return expected(c, t, v);
	for (size_t i = 0; i < v->u.object.len; i++) {
		const char *k = v->u.object.keys[i];
		const av_field *f = find_field(t, k);
		size_t mark = kaa__json_path_key(&c->path, k);
		if (!f)
			VFAIL(c, "unknown field (record %s has no field %s)", t->fullname,
			      kaa__json_quote(q, sizeof(q), k));
		rc = check(c, f->type, v->u.object.values[i], depth + 1);
		if (rc != KAA_OK)
			return rc;
		kaa__json_path_pop(&c->path, mark);
		if (!f->def)
			present_required++;
	}
	if (present_required == t->nrequired)
		return KAA_OK;
	/* Error path only: find the first missing field in schema order. */
	for (size_t i = 0; i < t->nfields; i++) {
		const av_field *f = &t->fields[i];
		if (f->def || kaa__json_member(v, f->name))
			continue;
		kaa__json_path_key(&c->path, f->name);
		VFAIL(c, "missing required field");
	}
	return KAA_ERR_INTERNAL;
}

static int check(vctx *c, const av_node *t, yajl_val v, int depth)
{
	char q[64];
	int64_t i64;
	long n;
	int rc;

	if (++c->steps > KAA_AVRO_MAX_STEPS)
		VFAIL(c, "document too complex to validate (over %d checks)", KAA_AVRO_MAX_STEPS);
	if (depth > KAA_AVRO_MAX_DOC_DEPTH)
		VFAIL(c, "nesting deeper than %d", KAA_AVRO_MAX_DOC_DEPTH);
	switch (t->kind) {
	case AV_NULL:
		if (!YAJL_IS_NULL(v))
			return expected(c, t, v);
		return KAA_OK;
	case AV_BOOLEAN:
		if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
			return expected(c, t, v);
		return KAA_OK;
	case AV_INT:
	case AV_LONG:
		if (!YAJL_IS_NUMBER(v))
			return expected(c, t, v);
		if (!kaa__json_int64(v, &i64)) {
			if (strpbrk(v->u.number.r, ".eE"))
				VFAIL(c, "expected %s, got non-integer number %.40s",
				      kind_names[t->kind], v->u.number.r);
			VFAIL(c, "value %.40s out of range for %s", v->u.number.r,
			      kind_names[t->kind]);
		}
		if (t->kind == AV_INT && (i64 < INT32_MIN || i64 > INT32_MAX))
			VFAIL(c, "value %lld out of range for int", (long long)i64);
		return KAA_OK;
	case AV_FLOAT:
		if (!YAJL_IS_NUMBER(v))
			return expected(c, t, v);
		if (fabs(kaa__json_double(v)) > FLT_MAX)
			VFAIL(c, "value %.40s out of range for float", v->u.number.r);
		return KAA_OK;
	case AV_DOUBLE:
		if (!YAJL_IS_NUMBER(v))
			return expected(c, t, v);
		return KAA_OK;
	case AV_STRING:
		if (!YAJL_IS_STRING(v))
			return expected(c, t, v);
		return KAA_OK;
	case AV_BYTES:
	case AV_FIXED:
		if (!YAJL_IS_STRING(v))
			return expected(c, t, v);
		n = byte_chars(v->u.string);
		if (n < 0)
			VFAIL(c,
			      "%s value has a character above U+00FF (each character is one "
			      "byte)",
			      kind_names[t->kind]);
		if (t->kind == AV_FIXED && (size_t)n != t->size)
			VFAIL(c, "expected %zu bytes for fixed %s, got %ld", t->size, t->fullname,
			      n);
		return KAA_OK;
	case AV_ENUM:
		if (!YAJL_IS_STRING(v))
			return expected(c, t, v);
		if (!bsearch_idx(v->u.string, t->sym_sorted, t->nsymbols, t->symbols))
			VFAIL(c, "%s is not a symbol of enum %s",
			      kaa__json_quote(q, sizeof(q), v->u.string), t->fullname);
		return KAA_OK;
	case AV_ARRAY:
		if (!YAJL_IS_ARRAY(v))
			return expected(c, t, v);
		for (size_t i = 0; i < v->u.array.len; i++) {
			size_t mark = kaa__json_path_index(&c->path, i);
			rc = check(c, t->items, v->u.array.values[i], depth + 1);
			if (rc != KAA_OK)
				return rc;
			kaa__json_path_pop(&c->path, mark);
		}
		return KAA_OK;
	case AV_MAP:
		if (!YAJL_IS_OBJECT(v))
			return expected(c, t, v);
		for (size_t i = 0; i < v->u.object.len; i++) {
			size_t mark = kaa__json_path_key(&c->path, v->u.object.keys[i]);
			rc = check(c, t->items, v->u.object.values[i], depth + 1);
			if (rc != KAA_OK)
				return rc;
			kaa__json_path_pop(&c->path, mark);
		}
		return KAA_OK;
	case AV_RECORD: return check_record(c, t, v, depth);
	case AV_UNION: return check_union(c, t, v, depth);
	}
	return KAA_ERR_INTERNAL;
}

/* ---- schema parsing ----------------------------------------------------- */

typedef struct pending_default {
	const av_node *type;
	yajl_val value;
	char *path; /* of the "default" attribute */
} pending_default;

typedef struct pctx {
	kaa__avro_schema *s;
	kaa__json_path path;
	char *err;
	size_t errlen;
	size_t ntypes;
	pending_default *defs;
	size_t ndefs, capdefs;
} pctx;

#define PFAIL(c, ...)                                                           \
	do {                                                                    \
		kaa__json_errf((c)->err, (c)->errlen, &(c)->path, __VA_ARGS__); \
		return KAA_ERR_INVAL;                                           \
	} while (0)

static int parse_type(pctx *c, yajl_val v, const char *ns, const av_node **out);

static const av_node *primitive(const char *name)
{
	for (size_t i = 0; i < sizeof(prims) / sizeof(prims[0]); i++)
		if (strcmp(name, kind_names[prims[i].kind]) == 0)
			return &prims[i];
	return NULL;
}

static bool valid_name(const char *s, size_t n)
{
	if (n == 0 ||
	    !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '_'))
			return false;
	}
	return true;
}

/* A dotted name: each component valid (an empty string is not). */
static bool valid_dotted(const char *s)
{
	const char *p = s;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (!valid_name(p, n))
			return false;
		if (!dot)
			return true;
		p = dot + 1;
	}
}

static int add_node(pctx *c, av_kind kind, av_node **out)
{
	kaa__avro_schema *s = c->s;
	av_node *n;

	if (++c->ntypes > KAA_AVRO_MAX_TYPES)
		PFAIL(c, "more than %d type definitions", KAA_AVRO_MAX_TYPES);
	if (s->nnodes == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		s->nodes = kaa__xrealloc(s->nodes, cap * sizeof(*s->nodes));
		s->cap = cap;
	}
	n = kaa__xcalloc(1, sizeof(*n));
	n->kind = kind;
	s->nodes[s->nnodes++] = n;
	*out = n;
	return KAA_OK;
}

/* The named type called fullname, other than except (the one being
 * defined). Linear: at most KAA_AVRO_MAX_TYPES nodes, parse time only. */
static const av_node *find_named(const kaa__avro_schema *s, const char *fullname,
				 const av_node *except)
{
	for (size_t i = 0; i < s->nnodes; i++)
		if (s->nodes[i] != except && s->nodes[i]->fullname &&
		    strcmp(s->nodes[i]->fullname, fullname) == 0)
			return s->nodes[i];
	return NULL;
}

/* Resolves a reference: dotted names are full names; others are tried in
 * the enclosing namespace, then in the null namespace. */
static int resolve(pctx *c, const char *name, const char *ns, const av_node **out)
{
	char q[64];
	const av_node *t = NULL;

	if (!strchr(name, '.') && ns && *ns) {
		size_t n = strlen(ns) + 1 + strlen(name) + 1;
		char *full = kaa__xmalloc(n);
		snprintf(full, n, "%s.%s", ns, name);
		t = find_named(c->s, full, NULL);
		free(full);
	}
	if (!t)
		t = find_named(c->s, name, NULL);
	if (!t)
		PFAIL(c, "unknown type %s", kaa__json_quote(q, sizeof(q), name));
	*out = t;
	return KAA_OK;
}

/* Sets node->fullname and node->space from "name"/"namespace" of obj. */
static int define_name(pctx *c, yajl_val obj, const char *ns, av_node *node)
{
	yajl_val name = kaa__json_member(obj, "name"), space = kaa__json_member(obj, "namespace");
	char q[64];
	const char *last, *sp;
	size_t m;

	m = kaa__json_path_key(&c->path, "name");
	if (!name)
		PFAIL(c, "missing name of %s", kind_names[node->kind]);
	if (!YAJL_IS_STRING(name))
		PFAIL(c, "expected a string, got %s", json_kind(name));
	if (!valid_dotted(name->u.string))
		PFAIL(c, "invalid name %s (names match [A-Za-z_][A-Za-z0-9_]*)",
		      kaa__json_quote(q, sizeof(q), name->u.string));
	kaa__json_path_pop(&c->path, m);
	if (space) {
		m = kaa__json_path_key(&c->path, "namespace");
		if (!YAJL_IS_STRING(space))
			PFAIL(c, "expected a string, got %s", json_kind(space));
		if (*space->u.string && !valid_dotted(space->u.string))
			PFAIL(c, "invalid namespace %s",
			      kaa__json_quote(q, sizeof(q), space->u.string));
		kaa__json_path_pop(&c->path, m);
	}
	last = strrchr(name->u.string, '.');
	if (last) {
		node->fullname = kaa__xstrdup(name->u.string);
		node->space = kaa__xstrndup(name->u.string, (size_t)(last - name->u.string));
		last++;
	} else {
		sp = space ? space->u.string : (ns ? ns : "");
		node->space = kaa__xstrdup(sp);
		size_t n = strlen(sp) + 1 + strlen(name->u.string) + 1;
		node->fullname = kaa__xmalloc(n);
		snprintf(node->fullname, n, "%s%s%s", sp, *sp ? "." : "", name->u.string);
		last = name->u.string;
	}
	m = kaa__json_path_key(&c->path, "name");
	if (strlen(node->fullname) > KAA_AVRO_MAX_NAME)
		PFAIL(c, "full name longer than %d bytes", KAA_AVRO_MAX_NAME);
	if (primitive(last))
		PFAIL(c, "cannot redefine primitive type %s", kaa__json_quote(q, sizeof(q), last));
	if (find_named(c->s, node->fullname, node))
		PFAIL(c, "redefinition of %s", kaa__json_quote(q, sizeof(q), node->fullname));
	kaa__json_path_pop(&c->path, m);
	return KAA_OK;
}

static int check_opt_string(pctx *c, yajl_val obj, const char *key)
{
	yajl_val v = kaa__json_member(obj, key);
	if (v && !YAJL_IS_STRING(v)) {
		kaa__json_path_key(&c->path, key);
		PFAIL(c, "expected a string, got %s", json_kind(v));
	}
	return KAA_OK;
}

static int check_aliases(pctx *c, yajl_val obj)
{
	yajl_val a = kaa__json_member(obj, "aliases");
	char q[64];
	size_t m;

	if (!a)
		return KAA_OK;
	m = kaa__json_path_key(&c->path, "aliases");
	if (!YAJL_IS_ARRAY(a))
		PFAIL(c, "expected an array of names, got %s", json_kind(a));
	for (size_t i = 0; i < a->u.array.len; i++) {
		yajl_val x = a->u.array.values[i];
		size_t im = kaa__json_path_index(&c->path, i);
		if (!YAJL_IS_STRING(x))
			PFAIL(c, "expected a string, got %s", json_kind(x));
		if (!valid_dotted(x->u.string))
			PFAIL(c, "invalid alias %s", kaa__json_quote(q, sizeof(q), x->u.string));
		kaa__json_path_pop(&c->path, im);
	}
	kaa__json_path_pop(&c->path, m);
	return KAA_OK;
}

static int add_pending(pctx *c, const av_node *type, yajl_val value)
{
	if (c->ndefs == c->capdefs) {
		size_t cap = c->capdefs ? c->capdefs * 2 : 16;
		c->defs = kaa__xrealloc(c->defs, cap * sizeof(*c->defs));
		c->capdefs = cap;
	}
	c->defs[c->ndefs].type = type;
	c->defs[c->ndefs].value = value;
	c->defs[c->ndefs].path = kaa__xstrdup(c->path.buf);
	c->ndefs++;
	return KAA_OK;
}

static int cmp_field_idx(const void *a, const void *b, void *arg)
{
	const av_field *f = arg;
	return strcmp(f[*(const size_t *)a].name, f[*(const size_t *)b].name);
}

static int cmp_name_idx(const void *a, const void *b, void *arg)
{
	const char *const *names = arg;
	return strcmp(names[*(const size_t *)a], names[*(const size_t *)b]);
}

static int parse_field(pctx *c, av_node *r, yajl_val fv, av_field *f)
{
	yajl_val name, type, def, order;
	char q[64];
	size_t m;
	int rc;

	if (!YAJL_IS_OBJECT(fv))
		PFAIL(c, "expected a field object, got %s", json_kind(fv));
	name = kaa__json_member(fv, "name");
	type = kaa__json_member(fv, "type");
	m = kaa__json_path_key(&c->path, "name");
	if (!name)
		PFAIL(c, "missing field name");
	if (!YAJL_IS_STRING(name))
		PFAIL(c, "expected a string, got %s", json_kind(name));
	if (!valid_name(name->u.string, strlen(name->u.string)))
		PFAIL(c, "invalid field name %s (names match [A-Za-z_][A-Za-z0-9_]*)",
		      kaa__json_quote(q, sizeof(q), name->u.string));
	kaa__json_path_pop(&c->path, m);
	f->name = name->u.string;
	m = kaa__json_path_key(&c->path, "type");
	if (!type)
		PFAIL(c, "missing type of field %s", kaa__json_quote(q, sizeof(q), f->name));
	rc = parse_type(c, type, r->space, &f->type);
	if (rc != KAA_OK)
		return rc;
	kaa__json_path_pop(&c->path, m);
	rc = check_opt_string(c, fv, "doc");
	if (rc != KAA_OK)
		return rc;
	order = kaa__json_member(fv, "order");
	if (order && (!YAJL_IS_STRING(order) || (strcmp(order->u.string, "ascending") != 0 &&
						 strcmp(order->u.string, "descending") != 0 &&
						 strcmp(order->u.string, "ignore") != 0))) {
		kaa__json_path_key(&c->path, "order");
		PFAIL(c, "order must be \"ascending\", \"descending\" or \"ignore\"");
	}
	rc = check_aliases(c, fv);
	if (rc != KAA_OK)
		return rc;
	def = kaa__json_member(fv, "default");
	m = kaa__json_path_key(&c->path, "default");
	if (!def) {
		/* Kaa configuration schemas */
		def = kaa__json_member(fv, "by_default");
		kaa__json_path_pop(&c->path, m);
		m = kaa__json_path_key(&c->path, "by_default");
	}
	if (def) {
		f->def = def;
		rc = add_pending(c, f->type, def);
		if (rc != KAA_OK)
			return rc;
	}
	kaa__json_path_pop(&c->path, m);
	return KAA_OK;
}

static int parse_record(pctx *c, yajl_val obj, const char *ns, const av_node **out)
{
	yajl_val fields;
	av_node *r;
	size_t m;
	int rc;

	rc = add_node(c, AV_RECORD, &r);
	if (rc != KAA_OK)
		return rc;
	rc = define_name(c, obj, ns, r); /* before the fields: recursion may name it */
	if (rc != KAA_OK)
		return rc;
	rc = check_opt_string(c, obj, "doc");
	if (rc != KAA_OK)
		return rc;
	rc = check_aliases(c, obj);
	if (rc != KAA_OK)
		return rc;
	fields = kaa__json_member(obj, "fields");
	m = kaa__json_path_key(&c->path, "fields");
	if (!fields)
		PFAIL(c, "missing fields of record %s", r->fullname);
	if (!YAJL_IS_ARRAY(fields))
		PFAIL(c, "expected an array of fields, got %s", json_kind(fields));
	if (fields->u.array.len > KAA_AVRO_MAX_FIELDS)
		PFAIL(c, "more than %d fields", KAA_AVRO_MAX_FIELDS);
	r->fields = kaa__xcalloc(fields->u.array.len, sizeof(*r->fields));
	r->by_name = kaa__xcalloc(fields->u.array.len, sizeof(*r->by_name));
	for (size_t i = 0; i < fields->u.array.len; i++) {
		size_t fm = kaa__json_path_index(&c->path, i);
		rc = parse_field(c, r, fields->u.array.values[i], &r->fields[i]);
		if (rc != KAA_OK)
			return rc;
		kaa__json_path_pop(&c->path, fm);
		r->nfields++;
		r->by_name[i] = i;
		if (!r->fields[i].def)
			r->nrequired++;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(r->fields[j].name, r->fields[i].name) == 0) {
				char q[64];
				kaa__json_path_index(&c->path, i);
				kaa__json_path_key(&c->path, "name");
				PFAIL(c, "duplicate field name %s (also fields[%zu])",
				      kaa__json_quote(q, sizeof(q), r->fields[i].name), j);
			}
		}
	}
	qsort_r(r->by_name, r->nfields, sizeof(*r->by_name), cmp_field_idx, r->fields);
	kaa__json_path_pop(&c->path, m);
	*out = r;
	return KAA_OK;
}

static int parse_enum(pctx *c, yajl_val obj, const char *ns, const av_node **out)
{
	yajl_val syms, def;
	av_node *e;
	char q[64];
	size_t m;
	int rc;

	rc = add_node(c, AV_ENUM, &e);
	if (rc != KAA_OK)
		return rc;
	rc = define_name(c, obj, ns, e);
	if (rc != KAA_OK)
		return rc;
	rc = check_opt_string(c, obj, "doc");
	if (rc != KAA_OK)
		return rc;
	rc = check_aliases(c, obj);
	if (rc != KAA_OK)
		return rc;
	syms = kaa__json_member(obj, "symbols");
	m = kaa__json_path_key(&c->path, "symbols");
	if (!syms)
		PFAIL(c, "missing symbols of enum %s", e->fullname);
	if (!YAJL_IS_ARRAY(syms))
		PFAIL(c, "expected an array of symbols, got %s", json_kind(syms));
	if (syms->u.array.len == 0)
		PFAIL(c, "enum %s has no symbols", e->fullname);
	if (syms->u.array.len > KAA_AVRO_MAX_SYMBOLS)
		PFAIL(c, "more than %d symbols", KAA_AVRO_MAX_SYMBOLS);
	e->symbols = kaa__xcalloc(syms->u.array.len, sizeof(*e->symbols));
	e->sym_sorted = kaa__xcalloc(syms->u.array.len, sizeof(*e->sym_sorted));
	for (size_t i = 0; i < syms->u.array.len; i++) {
		yajl_val s = syms->u.array.values[i];
		size_t sm = kaa__json_path_index(&c->path, i);
		if (!YAJL_IS_STRING(s))
			PFAIL(c, "expected a string, got %s", json_kind(s));
		if (!valid_name(s->u.string, strlen(s->u.string)))
			PFAIL(c, "invalid symbol %s (symbols match [A-Za-z_][A-Za-z0-9_]*)",
			      kaa__json_quote(q, sizeof(q), s->u.string));
		e->symbols[i] = s->u.string;
		e->sym_sorted[i] = i;
		kaa__json_path_pop(&c->path, sm);
	}
	e->nsymbols = syms->u.array.len;
	qsort_r(e->sym_sorted, e->nsymbols, sizeof(*e->sym_sorted), cmp_name_idx,
		(void *)e->symbols);
	for (size_t i = 1; i < e->nsymbols; i++) {
		if (strcmp(e->symbols[e->sym_sorted[i - 1]], e->symbols[e->sym_sorted[i]]) == 0) {
			size_t later = e->sym_sorted[i] > e->sym_sorted[i - 1]
					       ? e->sym_sorted[i]
					       : e->sym_sorted[i - 1];
			kaa__json_path_index(&c->path, later);
			PFAIL(c, "duplicate symbol %s",
			      kaa__json_quote(q, sizeof(q), e->symbols[e->sym_sorted[i]]));
		}
	}
	kaa__json_path_pop(&c->path, m);
	def = kaa__json_member(obj, "default");
	if (def) {
		kaa__json_path_key(&c->path, "default");
		if (!YAJL_IS_STRING(def))
			PFAIL(c, "expected a symbol, got %s", json_kind(def));
		if (!bsearch_idx(def->u.string, e->sym_sorted, e->nsymbols, e->symbols))
			PFAIL(c, "default %s is not a symbol of enum %s",
			      kaa__json_quote(q, sizeof(q), def->u.string), e->fullname);
		e->enum_default = def->u.string;
		kaa__json_path_pop(&c->path, m);
	}
	*out = e;
	return KAA_OK;
}

static int parse_fixed(pctx *c, yajl_val obj, const char *ns, const av_node **out)
{
	yajl_val size;
	av_node *f;
	int64_t n;
	size_t m;
	int rc;

	rc = add_node(c, AV_FIXED, &f);
	if (rc != KAA_OK)
		return rc;
	rc = define_name(c, obj, ns, f);
	if (rc != KAA_OK)
		return rc;
	rc = check_aliases(c, obj);
	if (rc != KAA_OK)
		return rc;
	size = kaa__json_member(obj, "size");
	m = kaa__json_path_key(&c->path, "size");
	if (!size)
		PFAIL(c, "missing size of fixed %s", f->fullname);
	if (!kaa__json_int64(size, &n) || n < 0 || n > KAA_AVRO_MAX_FIXED_SIZE)
		PFAIL(c, "size must be an integer from 0 to %d", KAA_AVRO_MAX_FIXED_SIZE);
	f->size = (size_t)n;
	kaa__json_path_pop(&c->path, m);
	*out = f;
	return KAA_OK;
}

static int parse_container(pctx *c, yajl_val obj, av_kind kind, const char *ns, const av_node **out)
{
	const char *attr = kind == AV_ARRAY ? "items" : "values";
	yajl_val inner = kaa__json_member(obj, attr);
	av_node *n;
	size_t m;
	int rc;

	rc = add_node(c, kind, &n);
	if (rc != KAA_OK)
		return rc;
	m = kaa__json_path_key(&c->path, attr);
	if (!inner)
		PFAIL(c, "missing %s of %s", attr, kind_names[kind]);
	rc = parse_type(c, inner, ns, &n->items);
	if (rc != KAA_OK)
		return rc;
	kaa__json_path_pop(&c->path, m);
	*out = n;
	return KAA_OK;
}

static int parse_union(pctx *c, yajl_val arr, const char *ns, const av_node **out)
{
	av_node *u;
	char q[64];
	int rc;

	rc = add_node(c, AV_UNION, &u);
	if (rc != KAA_OK)
		return rc;
	if (arr->u.array.len == 0)
		PFAIL(c, "empty union");
	if (arr->u.array.len > KAA_AVRO_MAX_BRANCHES)
		PFAIL(c, "union of more than %d branches", KAA_AVRO_MAX_BRANCHES);
	u->branches = kaa__xcalloc(arr->u.array.len, sizeof(*u->branches));
	for (size_t i = 0; i < arr->u.array.len; i++) {
		const av_node *b;
		size_t m = kaa__json_path_index(&c->path, i);
		rc = parse_type(c, arr->u.array.values[i], ns, &b);
		if (rc != KAA_OK)
			return rc;
		if (b->kind == AV_UNION)
			PFAIL(c, "a union cannot directly contain a union");
		for (size_t j = 0; j < i; j++) {
			const av_node *o = u->branches[j];
			if (o->kind != b->kind)
				continue;
			if (!is_named(b))
				PFAIL(c, "union has two %s branches (also [%zu])",
				      kind_names[b->kind], j);
			if (strcmp(o->fullname, b->fullname) == 0)
				PFAIL(c, "union has %s twice (also [%zu])",
				      kaa__json_quote(q, sizeof(q), b->fullname), j);
		}
		u->branches[i] = b;
		u->nbranches++;
		kaa__json_path_pop(&c->path, m);
	}
	*out = u;
	return KAA_OK;
}

static int parse_type(pctx *c, yajl_val v, const char *ns, const av_node **out)
{
	yajl_val type;
	const char *t;
	char q[64];

	if (YAJL_IS_STRING(v)) {
		*out = primitive(v->u.string);
		if (*out)
			return KAA_OK;
		return resolve(c, v->u.string, ns, out);
	}
	if (YAJL_IS_ARRAY(v))
		return parse_union(c, v, ns, out);
	if (!YAJL_IS_OBJECT(v))
		PFAIL(c, "expected a type name, type object or union array, got %s", json_kind(v));
	type = kaa__json_member(v, "type");
	if (!type)
		PFAIL(c, "missing \"type\"");
	if (!YAJL_IS_STRING(type)) {
		kaa__json_path_key(&c->path, "type");
		PFAIL(c, "expected a type name string, got %s", json_kind(type));
	}
	t = type->u.string;
	*out = primitive(t);
	if (*out)
		return KAA_OK;
	if (strcmp(t, "record") == 0 || strcmp(t, "error") == 0)
		return parse_record(c, v, ns, out);
	if (strcmp(t, "enum") == 0)
		return parse_enum(c, v, ns, out);
	if (strcmp(t, "fixed") == 0)
		return parse_fixed(c, v, ns, out);
	if (strcmp(t, "array") == 0)
		return parse_container(c, v, AV_ARRAY, ns, out);
	if (strcmp(t, "map") == 0)
		return parse_container(c, v, AV_MAP, ns, out);
	if (strcmp(t, "union") == 0) {
		kaa__json_path_key(&c->path, "type");
		PFAIL(c, "unknown type %s (a union is written as a JSON array)",
		      kaa__json_quote(q, sizeof(q), t));
	}
	/* {"type": "org.x.Named"}: a reference in object form */
	size_t m = kaa__json_path_key(&c->path, "type");
	int rc = resolve(c, t, ns, out);
	if (rc == KAA_OK)
		kaa__json_path_pop(&c->path, m);
	return rc;
}

/* Checks the collected defaults once every type is complete (a default
 * may hold a value of the record that contains it). */
static int check_defaults(pctx *c)
{
	vctx v;
	int rc;

	for (size_t i = 0; i < c->ndefs; i++) {
		const pending_default *d = &c->defs[i];
		memset(&v, 0, sizeof(v));
		kaa__json_path_init(&v.path);
		/* continue the schema path of the default attribute */
		snprintf(v.path.buf, sizeof(v.path.buf), "%s", d->path);
		v.path.len = strlen(v.path.buf);
		if (v.path.len >= 3 && strcmp(v.path.buf + v.path.len - 3, "...") == 0)
			v.path.elided_at = v.path.len - 3;
		v.err = c->err;
		v.errlen = c->errlen;
		if (d->type->kind == AV_UNION) {
			const av_node *first = d->type->branches[0];
			vctx quiet = v;
			quiet.err = NULL;
			if (check(&quiet, first, d->value, 0) == KAA_OK)
				continue;
			quiet.steps = 0;
			if (check(&quiet, d->type, d->value, 0) == KAA_OK) {
				char desc[KAA_AVRO_MAX_NAME + 16];
				kaa__json_errf(c->err, c->errlen, &v.path,
					       "default of a union must match its first branch "
					       "(%s)",
					       type_desc(first, desc, sizeof(desc)));
				return KAA_ERR_INVAL;
			}
			rc = check(&v, first, d->value, 0);
		} else {
			rc = check(&v, d->type, d->value, 0);
		}
		if (rc != KAA_OK)
			return rc;
	}
	return KAA_OK;
}

void kaa__avro_schema_free(kaa__avro_schema *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nnodes; i++) {
		av_node *n = s->nodes[i];
		free(n->fullname);
		free(n->space);
		free(n->fields);
		free(n->by_name);
		free(n->symbols);
		free(n->sym_sorted);
		free(n->branches);
		free(n);
	}
	free(s->nodes);
	yajl_tree_free(s->tree);
	free(s);
}

int kaa__avro_schema_parse(const char *json, size_t len, kaa__avro_schema **out, char *err,
			   size_t errlen)
{
	pctx c;
	int rc;

	*out = NULL;
	memset(&c, 0, sizeof(c));
	c.err = err;
	c.errlen = errlen;
	kaa__json_path_init(&c.path);
	c.s = kaa__xcalloc(1, sizeof(*c.s));
	rc = kaa__json_parse(json, len, KAA_AVRO_MAX_SCHEMA_BYTES, KAA_AVRO_MAX_SCHEMA_DEPTH,
			     &c.s->tree, err, errlen);
	if (rc != KAA_OK)
		goto out;
	rc = parse_type(&c, c.s->tree, "", &c.s->root);
	if (rc == KAA_OK)
		rc = check_defaults(&c);
out:
	for (size_t i = 0; i < c.ndefs; i++)
		free(c.defs[i].path);
	free(c.defs);
	if (rc != KAA_OK)
		kaa__avro_schema_free(c.s);
	else
		*out = c.s;
	return rc;
}

const char *kaa__avro_schema_name(const kaa__avro_schema *s)
{
	return is_named(s->root) ? s->root->fullname : kind_names[s->root->kind];
}

/* ---- document validation ------------------------------------------------ */

int kaa__avro_validate_tree(const kaa__avro_schema *s, yajl_val doc, char *path_err, size_t errlen)
{
	vctx c;

	memset(&c, 0, sizeof(c));
	kaa__json_path_init(&c.path);
	c.err = path_err;
	c.errlen = errlen;
	if (path_err && errlen)
		path_err[0] = '\0';
	return check(&c, s->root, doc, 0);
}

int kaa__avro_validate(const kaa__avro_schema *s, const char *json, size_t len, char *path_err,
		       size_t errlen)
{
	yajl_val doc;
	int rc = kaa__json_parse(json, len, KAA_AVRO_MAX_DOC_BYTES, KAA_AVRO_MAX_DOC_DEPTH, &doc,
				 path_err, errlen);
	if (rc != KAA_OK)
		return rc;
	rc = kaa__avro_validate_tree(s, doc, path_err, errlen);
	yajl_tree_free(doc);
	return rc;
}

/* ---- defaults and completion --------------------------------------------- */

typedef struct gctx {
	yajl_gen g;
	kaa__json_path path;
	char *err;
	size_t errlen;
} gctx;

static int gen_status(yajl_gen_status st)
{
	return st == yajl_gen_status_ok ? KAA_OK : KAA_ERR_INVAL;
}

static int gen_key(yajl_gen g, const char *k)
{
	return gen_status(yajl_gen_string(g, (const unsigned char *)k, strlen(k)));
}

static bool gen_too_big(yajl_gen g)
{
	const unsigned char *buf;
	size_t len;
	return yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok &&
	       len > KAA_AVRO_MAX_DOC_BYTES;
}

/* Emits v (valid for t, or NULL for "no value") with every left-out field
 * filled in. Output keys are not sorted; the caller canonicalises. */
static int fill(gctx *c, const av_node *t, yajl_val v, int depth)
{
	int rc = KAA_OK;

	/* a container at depth d is at JSON nesting d + 1 */
	if (depth >= KAA_AVRO_MAX_DOC_DEPTH &&
	    (t->kind == AV_RECORD || t->kind == AV_ARRAY || t->kind == AV_MAP)) {
		kaa__json_errf(c->err, c->errlen, &c->path,
			       "no default value: nesting deeper than %d (recursive record "
			       "without defaults?)",
			       KAA_AVRO_MAX_DOC_DEPTH);
		return KAA_ERR_INVAL;
	}
	if (gen_too_big(c->g)) {
		kaa__json_errf(c->err, c->errlen, &c->path, "document exceeds %d bytes",
			       KAA_AVRO_MAX_DOC_BYTES);
		return KAA_ERR_TOO_BIG;
	}
	switch (t->kind) {
	case AV_RECORD: {
		yajl_val *vals = kaa__xcalloc(t->nfields, sizeof(*vals));
		if (YAJL_IS_OBJECT(v)) {
			for (size_t i = 0; i < v->u.object.len; i++) {
				const av_field *f = find_field(t, v->u.object.keys[i]);
				if (f)
					vals[f - t->fields] = v->u.object.values[i];
			}
		}
		rc = gen_status(yajl_gen_map_open(c->g));
		for (size_t i = 0; i < t->nfields && rc == KAA_OK; i++) {
			const av_field *f = &t->fields[i];
			size_t m = kaa__json_path_key(&c->path, f->name);
			rc = gen_key(c->g, f->name);
			if (rc == KAA_OK)
				rc = fill(c, f->type, vals[i] ? vals[i] : f->def, depth + 1);
			if (rc == KAA_OK)
				kaa__json_path_pop(&c->path, m);
		}
		free(vals);
		if (rc == KAA_OK)
			rc = gen_status(yajl_gen_map_close(c->g));
		return rc;
	}
	case AV_UNION: {
		if (v) {
			vctx q;
			long which;
			memset(&q, 0, sizeof(q));
			kaa__json_path_init(&q.path);
			rc = union_branch(&q, t, v, depth, &which);
			if (rc != KAA_OK || which < 0) {
				kaa__json_errf(c->err, c->errlen, &c->path,
					       "value matches no union branch");
				return KAA_ERR_INVAL;
			}
			return fill(c, t->branches[which], v, depth);
		}
		for (size_t i = 0; i < t->nbranches; i++)
			if (t->branches[i]->kind == AV_NULL)
				return gen_status(yajl_gen_null(c->g));
		return fill(c, t->branches[0], NULL, depth);
	}
	case AV_ARRAY:
		rc = gen_status(yajl_gen_array_open(c->g));
		for (size_t i = 0; v && i < v->u.array.len && rc == KAA_OK; i++) {
			size_t m = kaa__json_path_index(&c->path, i);
			rc = fill(c, t->items, v->u.array.values[i], depth + 1);
			if (rc == KAA_OK)
				kaa__json_path_pop(&c->path, m);
		}
		if (rc == KAA_OK)
			rc = gen_status(yajl_gen_array_close(c->g));
		return rc;
	case AV_MAP:
		rc = gen_status(yajl_gen_map_open(c->g));
		for (size_t i = 0; v && i < v->u.object.len && rc == KAA_OK; i++) {
			size_t m = kaa__json_path_key(&c->path, v->u.object.keys[i]);
			rc = gen_key(c->g, v->u.object.keys[i]);
			if (rc == KAA_OK)
				rc = fill(c, t->items, v->u.object.values[i], depth + 1);
			if (rc == KAA_OK)
				kaa__json_path_pop(&c->path, m);
		}
		if (rc == KAA_OK)
			rc = gen_status(yajl_gen_map_close(c->g));
		return rc;
	case AV_NULL:
		if (!v)
			return gen_status(yajl_gen_null(c->g));
		return kaa__json_gen_canonical(c->g, v);
	case AV_ENUM:
		if (!v && t->enum_default)
			return gen_key(c->g, t->enum_default);
		/* fall through */
	default:
		if (!v) {
			char d[KAA_AVRO_MAX_NAME + 16];
			kaa__json_errf(c->err, c->errlen, &c->path,
				       "no default value (a field of type %s needs one)",
				       type_desc(t, d, sizeof(d)));
			return KAA_ERR_INVAL;
		}
		return kaa__json_gen_canonical(c->g, v);
	}
}

static int fill_doc(const kaa__avro_schema *s, yajl_val v, char **out, size_t *outlen, char *err,
		    size_t errlen)
{
	gctx c;
	char *raw = NULL;
	size_t rawlen = 0;
	int rc;

	memset(&c, 0, sizeof(c));
	kaa__json_path_init(&c.path);
	c.err = err;
	c.errlen = errlen;
	c.g = kaa__json_gen_new();
	rc = fill(&c, s->root, v, 0);
	if (rc == KAA_OK) {
		rc = kaa__json_gen_take(c.g, KAA_AVRO_MAX_DOC_BYTES, &raw, &rawlen);
		if (rc == KAA_ERR_TOO_BIG)
			kaa__json_errf(err, errlen, NULL, "document exceeds %d bytes",
				       KAA_AVRO_MAX_DOC_BYTES);
	}
	yajl_gen_free(c.g);
	if (rc == KAA_OK)
		rc = kaa__json_canonicalize(raw, rawlen, out, outlen, err, errlen);
	free(raw);
	return rc;
}

int kaa__avro_default_document(const kaa__avro_schema *s, char **out, size_t *outlen, char *err,
			       size_t errlen)
{
	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	return fill_doc(s, NULL, out, outlen, err, errlen);
}

int kaa__avro_complete(const kaa__avro_schema *s, const char *json, size_t len, char **out,
		       size_t *outlen, char *err, size_t errlen)
{
	yajl_val doc;
	int rc;

	*out = NULL;
	rc = kaa__json_parse(json, len, KAA_AVRO_MAX_DOC_BYTES, KAA_AVRO_MAX_DOC_DEPTH, &doc, err,
			     errlen);
	if (rc != KAA_OK)
		return rc;
	rc = kaa__avro_validate_tree(s, doc, err, errlen);
	if (rc == KAA_OK)
		rc = fill_doc(s, doc, out, outlen, err, errlen);
	yajl_tree_free(doc);
	return rc;
}
