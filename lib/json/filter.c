#include "json/filter.h"

#include "base/alloc.h"
#include "base/error.h"
#include "json/json_merge.h"

#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum op_kind {
	OP_EQ,
	OP_NE,
	OP_GT,
	OP_GTE,
	OP_LT,
	OP_LTE,
	OP_IN,
	OP_NIN,
	OP_EXISTS,
	OP_REGEX,
	OP_NOT,
} op_kind;

typedef struct cond {
	op_kind op;
	yajl_val arg; /* points into the filter's tree */
	bool exists;
	bool has_re;
	regex_t re;
	struct cond *sub; /* $not */
	size_t nsub;
} cond;

typedef enum node_kind { N_AND, N_OR, N_NOR, N_FIELD } node_kind;
typedef enum root_kind { R_CP, R_SP, R_EKH } root_kind;

typedef struct fnode {
	node_kind kind;
	struct fnode *kids; /* N_AND, N_OR, N_NOR */
	size_t nkids;
	root_kind root; /* N_FIELD */
	char **parts;   /* path components after the root */
	size_t nparts;
	cond *conds; /* implicit AND */
	size_t nconds;
} fnode;

struct kaa__filter {
	yajl_val tree;
	fnode root; /* N_AND of the top-level keys */
};

/* ---- compile --------------------------------------------------------------- */

typedef struct cctx {
	kaa__json_path path;
	char *err;
	size_t errlen;
	size_t nodes;
	size_t regexes;
} cctx;

#define CFAIL(c, ...)                                                           \
	do {                                                                    \
		kaa__json_errf((c)->err, (c)->errlen, &(c)->path, __VA_ARGS__); \
		return KAA_ERR_INVAL;                                           \
	} while (0)

static const char *json_kind(yajl_val v)
{
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

static int count_node(cctx *c)
{
	if (++c->nodes > KAA_FILTER_MAX_NODES)
		CFAIL(c, "more than %d conditions", KAA_FILTER_MAX_NODES);
	return KAA_OK;
}

static void conds_free(cond *cs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (cs[i].has_re)
			regfree(&cs[i].re);
		conds_free(cs[i].sub, cs[i].nsub);
	}
	free(cs);
}

static void node_clear(fnode *n)
{
	for (size_t i = 0; i < n->nkids; i++)
		node_clear(&n->kids[i]);
	free(n->kids);
	for (size_t i = 0; i < n->nparts; i++)
		free(n->parts[i]);
	free(n->parts);
	conds_free(n->conds, n->nconds);
	memset(n, 0, sizeof(*n));
}

/* Rejects what would make glibc's matcher slow or huge: back-references
 * (\1..\9, exponential), large repetition bounds (each {m,n} copies its
 * operand up to n times; nested bounds multiply) and stacked quantifiers
 * ("a++++{2,3}": undefined in ERE, and glibc's regcomp duplicates the
 * tree once per level, which a fuzzer drove to gigabytes). Bracket
 * expressions are skipped, since "\" and "{" are literal inside them. */
static int regex_precheck(cctx *c, const char *re)
{
	unsigned long product = 1;
	const char *p = re;
	bool prev_quant = false;

	while (*p) {
		bool quant = *p == '*' || *p == '+' || *p == '?' || *p == '{';
		if (quant && prev_quant)
			CFAIL(c, "a quantifier may not follow another quantifier (at offset %zu)",
			      (size_t)(p - re));
		prev_quant = quant;
		if (*p == '\\') {
			if (p[1] >= '1' && p[1] <= '9')
				CFAIL(c, "back-references (\\%c) are not supported", p[1]);
			p += p[1] ? 2 : 1;
		} else if (*p == '[') {
			p++;
			if (*p == '^')
				p++;
			if (*p == ']')
				p++;
			while (*p && *p != ']') {
				if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
					char close = p[1];
					p += 2;
					while (*p && !(p[0] == close && p[1] == ']'))
						p++;
					if (*p)
						p += 2;
				} else {
					p++;
				}
			}
			if (*p)
				p++;
		} else if (*p == '{') {
			unsigned long lo = 0, hi;
			p++;
			while (*p >= '0' && *p <= '9' && lo <= KAA_FILTER_MAX_REPEAT)
				lo = lo * 10 + (unsigned long)(*p++ - '0');
			hi = lo;
			if (*p == ',') {
				p++;
				/* {m,} costs like m copies plus a star: hi stays m */
				if (*p >= '0' && *p <= '9') {
					hi = 0;
					while (*p >= '0' && *p <= '9' &&
					       hi <= KAA_FILTER_MAX_REPEAT)
						hi = hi * 10 + (unsigned long)(*p++ - '0');
				}
			}
			product *= hi > 0 ? hi : 1;
			if (product > KAA_FILTER_MAX_REPEAT)
				CFAIL(c, "repetition bounds multiply to more than %d",
				      KAA_FILTER_MAX_REPEAT);
			if (*p == '}')
				p++; /* the next token must not be another quantifier */
		} else {
			p++;
		}
	}
	return KAA_OK;
}

static int compile_regex(cctx *c, cond *k, yajl_val pattern, yajl_val options)
{
	int flags = REG_EXTENDED | REG_NOSUB;
	char msg[128];
	int rc;

	if (!YAJL_IS_STRING(pattern))
		CFAIL(c, "$regex expects a string, got %s", json_kind(pattern));
	if (strlen(pattern->u.string) > KAA_FILTER_MAX_REGEX)
		CFAIL(c, "pattern longer than %d bytes", KAA_FILTER_MAX_REGEX);
	if (options) {
		if (!YAJL_IS_STRING(options))
			CFAIL(c, "$options expects a string, got %s", json_kind(options));
		for (const char *o = options->u.string; *o; o++) {
			if (*o == 'i')
				flags |= REG_ICASE;
			else if (*o == 'm')
				flags |= REG_NEWLINE;
			else
				CFAIL(c, "unsupported $options flag '%c' (supported: i, m)", *o);
		}
	}
	if (++c->regexes > KAA_FILTER_MAX_REGEXES)
		CFAIL(c, "more than %d regular expressions", KAA_FILTER_MAX_REGEXES);
	rc = regex_precheck(c, pattern->u.string);
	if (rc != KAA_OK)
		return rc;
	rc = regcomp(&k->re, pattern->u.string, flags);
	if (rc != 0) {
		regerror(rc, NULL, msg, sizeof(msg));
		if (rc == REG_ESPACE)
			return KAA_ERR_NOMEM;
		CFAIL(c, "invalid regular expression: %s", msg);
	}
	k->has_re = true;
	k->arg = pattern;
	return KAA_OK;
}

static bool is_comparable(yajl_val v)
{
	return YAJL_IS_NUMBER(v) || YAJL_IS_STRING(v);
}

static int compile_ops(cctx *c, yajl_val ops, cond **out, size_t *nout);

/* One operator of an operator document; options is the sibling $options. */
static int compile_op(cctx *c, const char *name, yajl_val arg, yajl_val options, cond *k)
{
	static const struct {
		const char *name;
		op_kind op;
	} table[] = {
		{"$eq", OP_EQ},         {"$ne", OP_NE},       {"$gt", OP_GT},   {"$gte", OP_GTE},
		{"$lt", OP_LT},         {"$lte", OP_LTE},     {"$in", OP_IN},   {"$nin", OP_NIN},
		{"$exists", OP_EXISTS}, {"$regex", OP_REGEX}, {"$not", OP_NOT},
	};
	char q[64];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(name, table[i].name) == 0)
			break;
	if (i == sizeof(table) / sizeof(table[0])) {
		if (strcmp(name, "$and") == 0 || strcmp(name, "$or") == 0 ||
		    strcmp(name, "$nor") == 0)
			CFAIL(c, "%s is a top-level operator, not a field operator", name);
		CFAIL(c,
		      "unknown operator %s (supported: $eq $ne $gt $gte $lt $lte $in $nin "
		      "$exists $regex $options $not)",
		      kaa__json_quote(q, sizeof(q), name));
	}
	rc = count_node(c);
	if (rc != KAA_OK)
		return rc;
	k->op = table[i].op;
	k->arg = arg;
	switch (k->op) {
	case OP_EQ:
	case OP_NE: return KAA_OK;
	case OP_GT:
	case OP_GTE:
	case OP_LT:
	case OP_LTE:
		if (!is_comparable(arg))
			CFAIL(c, "%s expects a number or a string, got %s", name, json_kind(arg));
		return KAA_OK;
	case OP_IN:
	case OP_NIN:
		if (!YAJL_IS_ARRAY(arg))
			CFAIL(c, "%s expects an array, got %s", name, json_kind(arg));
		if (arg->u.array.len > KAA_FILTER_MAX_IN)
			CFAIL(c, "%s list longer than %d", name, KAA_FILTER_MAX_IN);
		return KAA_OK;
	case OP_EXISTS:
		if (!YAJL_IS_TRUE(arg) && !YAJL_IS_FALSE(arg))
			CFAIL(c, "$exists expects true or false, got %s", json_kind(arg));
		k->exists = YAJL_IS_TRUE(arg);
		return KAA_OK;
	case OP_REGEX: return compile_regex(c, k, arg, options);
	case OP_NOT:
		if (!YAJL_IS_OBJECT(arg))
			CFAIL(c,
			      "$not expects an operator document such as {\"$regex\": ...}, "
			      "got %s",
			      json_kind(arg));
		if (arg->u.object.len == 0)
			CFAIL(c, "$not needs at least one operator");
		return compile_ops(c, arg, &k->sub, &k->nsub);
	}
	return KAA_ERR_INTERNAL;
}

static bool is_operator_doc(yajl_val v)
{
	return YAJL_IS_OBJECT(v) && v->u.object.len > 0 && v->u.object.keys[0][0] == '$';
}

/* {"$gt": 1, "$lt": 5, ...}: every key an operator. */
static int compile_ops(cctx *c, yajl_val ops, cond **out, size_t *nout)
{
	yajl_val regex = NULL, options = NULL;
	size_t n = 0;
	cond *cs;
	char q[64];
	int rc = KAA_OK;

	*out = NULL;
	*nout = 0;
	for (size_t i = 0; i < ops->u.object.len; i++) {
		const char *k = ops->u.object.keys[i];
		if (k[0] != '$') {
			kaa__json_path_key(&c->path, k);
			CFAIL(c, "field name %s mixed with operators",
			      kaa__json_quote(q, sizeof(q), k));
		}
		if (strcmp(k, "$regex") == 0)
			regex = ops->u.object.values[i];
		else if (strcmp(k, "$options") == 0)
			options = ops->u.object.values[i];
	}
	if (options && !regex) {
		kaa__json_path_key(&c->path, "$options");
		CFAIL(c, "$options without $regex");
	}
	cs = kaa__xcalloc(ops->u.object.len, sizeof(*cs));
	for (size_t i = 0; i < ops->u.object.len && rc == KAA_OK; i++) {
		const char *k = ops->u.object.keys[i];
		size_t m;
		if (strcmp(k, "$options") == 0)
			continue;
		m = kaa__json_path_key(&c->path, k);
		rc = compile_op(c, k, ops->u.object.values[i], options, &cs[n]);
		n++; /* also on failure: cs[n-1] may hold a regex or sub-conditions */
		if (rc == KAA_OK)
			kaa__json_path_pop(&c->path, m);
	}
	if (rc != KAA_OK) {
		conds_free(cs, n);
		return rc;
	}
	*out = cs;
	*nout = n;
	return KAA_OK;
}

static int compile_path(cctx *c, const char *path, fnode *n)
{
	char q[64];
	const char *p = path, *dot;
	size_t len = strlen(path), count = 1;

	if (len == 0)
		CFAIL(c, "empty field path");
	if (len > KAA_FILTER_MAX_PATH)
		CFAIL(c, "field path longer than %d bytes", KAA_FILTER_MAX_PATH);
	for (const char *s = path; *s; s++)
		if (*s == '.')
			count++;
	if (count > KAA_FILTER_MAX_PATH_PARTS)
		CFAIL(c, "field path of more than %d components", KAA_FILTER_MAX_PATH_PARTS);
	dot = strchr(p, '.');
	size_t rl = dot ? (size_t)(dot - p) : len;
	if (rl == 2 && strncmp(p, "cp", 2) == 0)
		n->root = R_CP;
	else if (rl == 2 && strncmp(p, "sp", 2) == 0)
		n->root = R_SP;
	else if (rl == 3 && strncmp(p, "ekh", 3) == 0)
		n->root = R_EKH;
	else
		CFAIL(c, "field path %s must start with cp, sp or ekh",
		      kaa__json_quote(q, sizeof(q), path));
	if (n->root == R_EKH && dot)
		CFAIL(c, "ekh is a string: it has no sub-fields");
	n->parts = kaa__xcalloc(count, sizeof(*n->parts));
	while (dot) {
		p = dot + 1;
		dot = strchr(p, '.');
		size_t pl = dot ? (size_t)(dot - p) : strlen(p);
		if (pl == 0)
			CFAIL(c, "empty component in field path %s",
			      kaa__json_quote(q, sizeof(q), path));
		if (p[0] == '$')
			CFAIL(c, "field path component %s starts with '$'",
			      kaa__json_quote(q, sizeof(q), path));
		n->parts[n->nparts] = kaa__xstrndup(p, pl);
		n->nparts++;
	}
	return KAA_OK;
}

static int compile_query(cctx *c, yajl_val q, fnode *n);

static int compile_logical(cctx *c, const char *name, yajl_val arr, fnode *n)
{
	int rc;

	n->kind = strcmp(name, "$and") == 0 ? N_AND : strcmp(name, "$or") == 0 ? N_OR : N_NOR;
	if (!YAJL_IS_ARRAY(arr))
		CFAIL(c, "%s expects an array of query documents, got %s", name, json_kind(arr));
	if (arr->u.array.len == 0)
		CFAIL(c, "%s needs at least one query document", name);
	n->kids = kaa__xcalloc(arr->u.array.len, sizeof(*n->kids));
	for (size_t i = 0; i < arr->u.array.len; i++) {
		size_t m = kaa__json_path_index(&c->path, i);
		n->nkids++;
		rc = compile_query(c, arr->u.array.values[i], &n->kids[i]);
		if (rc != KAA_OK)
			return rc;
		kaa__json_path_pop(&c->path, m);
	}
	return KAA_OK;
}

static int compile_field(cctx *c, const char *path, yajl_val v, fnode *n)
{
	int rc;

	n->kind = N_FIELD;
	rc = compile_path(c, path, n);
	if (rc != KAA_OK)
		return rc;
	if (is_operator_doc(v))
		return compile_ops(c, v, &n->conds, &n->nconds);
	if (YAJL_IS_OBJECT(v)) {
		for (size_t i = 0; i < v->u.object.len; i++) {
			if (v->u.object.keys[i][0] == '$') {
				char q[64];
				kaa__json_path_key(&c->path, v->u.object.keys[i]);
				CFAIL(c,
				      "operator %s mixed with field names (an object value "
				      "is either all operators or a literal)",
				      kaa__json_quote(q, sizeof(q), v->u.object.keys[i]));
			}
		}
	}
	rc = count_node(c);
	if (rc != KAA_OK)
		return rc;
	n->conds = kaa__xcalloc(1, sizeof(*n->conds));
	n->conds[0].op = OP_EQ; /* implicit equality */
	n->conds[0].arg = v;
	n->nconds = 1;
	return KAA_OK;
}

/* A query document: an object whose keys are ANDed. */
static int compile_query(cctx *c, yajl_val q, fnode *n)
{
	char qb[64];
	int rc;

	n->kind = N_AND;
	if (!YAJL_IS_OBJECT(q))
		CFAIL(c, "expected a query document (object), got %s", json_kind(q));
	rc = count_node(c);
	if (rc != KAA_OK)
		return rc;
	n->kids = kaa__xcalloc(q->u.object.len, sizeof(*n->kids));
	for (size_t i = 0; i < q->u.object.len; i++) {
		const char *k = q->u.object.keys[i];
		yajl_val v = q->u.object.values[i];
		size_t m = kaa__json_path_key(&c->path, k);
		fnode *kid = &n->kids[n->nkids++];
		if (strcmp(k, "$and") == 0 || strcmp(k, "$or") == 0 || strcmp(k, "$nor") == 0)
			rc = compile_logical(c, k, v, kid);
		else if (strcmp(k, "$not") == 0)
			CFAIL(c, "$not applies to a field: {\"path\": {\"$not\": {...}}}; use $nor "
				 "to negate a query");
		else if (k[0] == '$')
			CFAIL(c, "unknown top-level operator %s (supported: $and $or $nor)",
			      kaa__json_quote(qb, sizeof(qb), k));
		else
			rc = compile_field(c, k, v, kid);
		if (rc != KAA_OK)
			return rc;
		kaa__json_path_pop(&c->path, m);
	}
	return KAA_OK;
}

void kaa__filter_free(kaa__filter *f)
{
	if (!f)
		return;
	node_clear(&f->root);
	yajl_tree_free(f->tree);
	free(f);
}

int kaa__filter_compile(const char *json, size_t len, kaa__filter **out, char *err, size_t errlen)
{
	kaa__filter *f;
	cctx c;
	int rc;

	*out = NULL;
	memset(&c, 0, sizeof(c));
	c.err = err;
	c.errlen = errlen;
	kaa__json_path_init(&c.path);
	f = kaa__xcalloc(1, sizeof(*f));
	rc = kaa__json_parse(json, len, KAA_FILTER_MAX_BYTES, KAA_FILTER_MAX_DEPTH, &f->tree, err,
			     errlen);
	if (rc == KAA_OK)
		rc = compile_query(&c, f->tree, &f->root);
	if (rc == KAA_ERR_NOMEM) /* only regcomp's REG_ESPACE */
		kaa__json_errf(err, errlen, NULL, "out of memory");
	if (rc != KAA_OK) {
		kaa__filter_free(f);
		return rc;
	}
	*out = f;
	return KAA_OK;
}

bool kaa__filter_is_empty(const kaa__filter *f)
{
	return f->root.kind == N_AND && f->root.nkids == 0;
}

/* ---- evaluation ------------------------------------------------------------ */

/* -1, 0, 1, or 2 when a and b are not comparable (different kinds). */
static int compare(yajl_val a, yajl_val b)
{
	if (YAJL_IS_NUMBER(a) && YAJL_IS_NUMBER(b)) {
		int64_t x, y;
		if (kaa__json_int64(a, &x) && kaa__json_int64(b, &y))
			return x < y ? -1 : x > y;
		/* long double holds every int64 and double exactly (x86-64) */
		long double lx = kaa__json_int64(a, &x) ? (long double)x : kaa__json_double(a);
		long double ly = kaa__json_int64(b, &y) ? (long double)y : kaa__json_double(b);
		return lx < ly ? -1 : lx > ly;
	}
	if (YAJL_IS_STRING(a) && YAJL_IS_STRING(b)) {
		int r = strcmp(a->u.string, b->u.string);
		return r < 0 ? -1 : r > 0;
	}
	return 2;
}

/* Does one value (not looking inside arrays) satisfy a positive operator? */
static bool leaf_match(const cond *k, yajl_val x)
{
	int r;

	switch (k->op) {
	case OP_EQ: return kaa__json_equal(x, k->arg);
	case OP_IN:
		for (size_t i = 0; i < k->arg->u.array.len; i++)
			if (kaa__json_equal(x, k->arg->u.array.values[i]))
				return true;
		return false;
	case OP_GT: return (r = compare(x, k->arg)) == 1;
	case OP_GTE: return (r = compare(x, k->arg)) == 1 || r == 0;
	case OP_LT: return (r = compare(x, k->arg)) == -1;
	case OP_LTE: return (r = compare(x, k->arg)) == -1 || r == 0;
	case OP_REGEX: return YAJL_IS_STRING(x) && regexec(&k->re, x->u.string, 0, NULL, 0) == 0;
	default: return false;
	}
}

/* A value found at the path: it matches, or (for an array) its elements. */
static bool value_match(const cond *k, yajl_val x)
{
	if (k->op == OP_EXISTS)
		return true;
	if (leaf_match(k, x))
		return true;
	if (YAJL_IS_ARRAY(x))
		for (size_t i = 0; i < x->u.array.len; i++)
			if (leaf_match(k, x->u.array.values[i]))
				return true;
	return false;
}

/* Walks parts from v, calling value_match on every value the path reaches
 * (arrays fan out to their object elements unless the component is an
 * index); true as soon as one matches. *missing is set when some branch
 * of the walk found nothing. */
static bool walk(const cond *k, yajl_val v, char *const *parts, size_t n, bool *missing)
{
	if (!v) {
		*missing = true;
		return false;
	}
	if (n == 0)
		return value_match(k, v);
	if (YAJL_IS_OBJECT(v)) {
		for (size_t i = 0; i < v->u.object.len; i++)
			if (strcmp(v->u.object.keys[i], parts[0]) == 0)
				return walk(k, v->u.object.values[i], parts + 1, n - 1, missing);
		*missing = true;
		return false;
	}
	if (YAJL_IS_ARRAY(v)) {
		const char *s = parts[0];
		if (*s >= '0' && *s <= '9' && (s[0] != '0' || s[1] == '\0') &&
		    strspn(s, "0123456789") == strlen(s)) {
			size_t idx = 0;
			for (; *s && idx <= v->u.array.len; s++)
				idx = idx * 10 + (size_t)(*s - '0');
			if (idx < v->u.array.len)
				return walk(k, v->u.array.values[idx], parts + 1, n - 1, missing);
			*missing = true;
			return false;
		}
		for (size_t i = 0; i < v->u.array.len; i++) {
			yajl_val e = v->u.array.values[i];
			if (!YAJL_IS_OBJECT(e))
				*missing = true;
			else if (walk(k, e, parts, n, missing))
				return true;
		}
		return false;
	}
	*missing = true;
	return false;
}

static bool conds_match(const cond *cs, size_t n, yajl_val base, char *const *parts, size_t nparts);

static bool cond_match(const cond *k, yajl_val base, char *const *parts, size_t nparts)
{
	bool missing = false, found;
	cond pos;

	switch (k->op) {
	case OP_NOT: return !conds_match(k->sub, k->nsub, base, parts, nparts);
	case OP_NE:
	case OP_NIN:
		pos = *k;
		pos.op = k->op == OP_NE ? OP_EQ : OP_IN;
		return !cond_match(&pos, base, parts, nparts);
	case OP_EXISTS: found = walk(k, base, parts, nparts, &missing); return found == k->exists;
	case OP_EQ:
		found = walk(k, base, parts, nparts, &missing);
		return found || (missing && YAJL_IS_NULL(k->arg));
	case OP_IN:
		found = walk(k, base, parts, nparts, &missing);
		if (found || !missing)
			return found;
		for (size_t i = 0; i < k->arg->u.array.len; i++)
			if (YAJL_IS_NULL(k->arg->u.array.values[i]))
				return true;
		return false;
	default: return walk(k, base, parts, nparts, &missing);
	}
}

static bool conds_match(const cond *cs, size_t n, yajl_val base, char *const *parts, size_t nparts)
{
	for (size_t i = 0; i < n; i++)
		if (!cond_match(&cs[i], base, parts, nparts))
			return false;
	return true;
}

static bool node_match(const fnode *n, const kaa__filter_ctx *ctx, yajl_val ekh)
{
	switch (n->kind) {
	case N_AND:
		for (size_t i = 0; i < n->nkids; i++)
			if (!node_match(&n->kids[i], ctx, ekh))
				return false;
		return true;
	case N_OR:
		for (size_t i = 0; i < n->nkids; i++)
			if (node_match(&n->kids[i], ctx, ekh))
				return true;
		return false;
	case N_NOR:
		for (size_t i = 0; i < n->nkids; i++)
			if (node_match(&n->kids[i], ctx, ekh))
				return false;
		return true;
	case N_FIELD: {
		yajl_val base = n->root == R_CP ? ctx->cp : n->root == R_SP ? ctx->sp : ekh;
		return conds_match(n->conds, n->nconds, base, n->parts, n->nparts);
	}
	}
	return false;
}

static bool eval_with_ekh(const kaa__filter *f, const kaa__filter_ctx *ctx, yajl_val ekh)
{
	return node_match(&f->root, ctx, ekh);
}

bool kaa__filter_eval(const kaa__filter *f, const kaa__filter_ctx *ctx)
{
	struct yajl_val_s ekh;

	if (!ctx->ekh)
		return eval_with_ekh(f, ctx, NULL);
	memset(&ekh, 0, sizeof(ekh));
	ekh.type = yajl_t_string;
	ekh.u.string = (char *)ctx->ekh; /* read only */
	return eval_with_ekh(f, ctx, &ekh);
}

bool kaa__filter_match_tree(const kaa__filter *f, yajl_val context)
{
	kaa__filter_ctx ctx = {0};
	yajl_val ekh = NULL;

	if (YAJL_IS_OBJECT(context)) {
		for (size_t i = 0; i < context->u.object.len; i++) {
			const char *k = context->u.object.keys[i];
			if (strcmp(k, "cp") == 0)
				ctx.cp = context->u.object.values[i];
			else if (strcmp(k, "sp") == 0)
				ctx.sp = context->u.object.values[i];
			else if (strcmp(k, "ekh") == 0)
				ekh = context->u.object.values[i];
		}
	}
	return eval_with_ekh(f, &ctx, ekh);
}

int kaa__filter_match(const kaa__filter *f, const char *json, size_t len, bool *match)
{
	yajl_val ctx;
	int rc;

	*match = false;
	rc = kaa__json_parse(json, len, KAA_FILTER_MAX_CONTEXT_BYTES, KAA_JSON_MAX_DEPTH + 1, &ctx,
			     NULL, 0);
	if (rc != KAA_OK)
		return rc;
	if (!YAJL_IS_OBJECT(ctx)) {
		yajl_tree_free(ctx);
		return KAA_ERR_INVAL;
	}
	*match = kaa__filter_match_tree(f, ctx);
	yajl_tree_free(ctx);
	return KAA_OK;
}
