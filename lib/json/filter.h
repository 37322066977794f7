/*
 * filter.h - endpoint-group filters: MongoDB-style query documents over an
 * endpoint's context
 *     {"cp": <client-side profile>, "sp": <server-side profile>,
 *      "ekh": "<endpoint key hash>"}
 * The language (a subset of MongoDB's query language, so the MongoDB
 * backend can push a filter down unchanged) is specified in
 * docs/filters.md: dotted paths rooted at cp, sp or ekh; implicit equality
 * and implicit AND; $eq $ne $gt $gte $lt $lte $in $nin $exists $not
 * $regex (+ $options "i", "m"); $and $or $nor. "{}" matches everything.
 *
 * Limits (docs/filters.md explains each): filter text KAA_FILTER_MAX_BYTES
 * (KAA_ERR_TOO_BIG), nesting KAA_FILTER_MAX_DEPTH, KAA_FILTER_MAX_NODES
 * conditions, paths of KAA_FILTER_MAX_PATH bytes and
 * KAA_FILTER_MAX_PATH_PARTS components, $in/$nin lists of
 * KAA_FILTER_MAX_IN values, KAA_FILTER_MAX_REGEXES patterns of
 * KAA_FILTER_MAX_REGEX bytes each whose {m,n} bounds multiply to at most
 * KAA_FILTER_MAX_REPEAT, no back-references; context text
 * KAA_FILTER_MAX_CONTEXT_BYTES.
 *
 * Ownership: a compiled kaa__filter is immutable and owned by the caller.
 * Thread-safety: compile and match are pure; one compiled filter may be
 * matched from any number of threads at once (glibc's regexec is
 * thread-safe on a shared regex_t).
 */
#ifndef KAA_FILTER_H
#define KAA_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_tree.h>

#define KAA_FILTER_MAX_BYTES (64 * 1024)
#define KAA_FILTER_MAX_DEPTH 32
#define KAA_FILTER_MAX_NODES 1024
#define KAA_FILTER_MAX_PATH 256
#define KAA_FILTER_MAX_PATH_PARTS 32
#define KAA_FILTER_MAX_IN 1024
#define KAA_FILTER_MAX_REGEXES 16
#define KAA_FILTER_MAX_REGEX 256
#define KAA_FILTER_MAX_REPEAT 1000
#define KAA_FILTER_MAX_CONTEXT_BYTES (4 * 1024 * 1024)

typedef struct kaa__filter kaa__filter;

/* An endpoint's context without building JSON: any member may be NULL
 * (absent). cp and sp are trees from kaa__json_parse. */
typedef struct kaa__filter_ctx {
	yajl_val cp;
	yajl_val sp;
	const char *ekh;
} kaa__filter_ctx;

/* Compiles the filter json[0..len). On success *out is a new filter (free
 * with kaa__filter_free). Errors: KAA_ERR_INVAL (malformed JSON, unknown
 * operator, bad operand, bad path, bad regex, a limit; err reads
 * "<path in the filter>: <reason>", e.g.
 *   $["cp.model"].$regx: unknown operator "$regx"),
 * KAA_ERR_TOO_BIG (over KAA_FILTER_MAX_BYTES), KAA_ERR_NOMEM (only when
 * regcomp runs out of memory; our own allocations abort, base/alloc.h). */
int kaa__filter_compile(const char *json, size_t len, kaa__filter **out, char *err, size_t errlen);
/* Accepts NULL. */
void kaa__filter_free(kaa__filter *f);

/* *match = whether the context JSON json[0..len) (an object as above;
 * other members are ignored) satisfies f. Errors: KAA_ERR_INVAL (malformed
 * JSON or not an object), KAA_ERR_TOO_BIG (over
 * KAA_FILTER_MAX_CONTEXT_BYTES); *match is false then. */
int kaa__filter_match(const kaa__filter *f, const char *json, size_t len, bool *match);
/* The same on a context tree from kaa__json_parse; a non-object context
 * has no cp, sp or ekh. Never fails, never allocates except for deep
 * object comparisons. */
bool kaa__filter_match_tree(const kaa__filter *f, yajl_val context);
/* The same on separately held parts (one parse per profile, many filters). */
bool kaa__filter_eval(const kaa__filter *f, const kaa__filter_ctx *ctx);

/* True for a filter with no condition ("{}"), which matches everything. */
bool kaa__filter_is_empty(const kaa__filter *f);

#endif
