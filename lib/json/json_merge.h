/*
 * json_merge.h - JSON documents as the control and operations services use
 * them: bounded parsing, canonical form and its SHA-256, the weighted
 * configuration merge of endpoint groups, and RFC 7386 JSON merge patch.
 * avro_schema.c and filter.c build on the parsing and path helpers here.
 *
 * Parsing (kaa__json_parse) accepts one JSON value (RFC 8259, no comments,
 * no trailing bytes) and rejects, beyond yajl's own checks:
 *   - more than max_bytes bytes (KAA_ERR_TOO_BIG),
 *   - nesting of arrays/objects deeper than max_depth (checked on the raw
 *     bytes before yajl builds a tree, so a hostile "[[[[..." never reaches
 *     yajl_tree's recursive free),
 *   - a raw NUL byte or a \u0000 escape (yajl_tree stores C strings, which
 *     would silently cut the string and make different documents equal),
 *   - duplicate keys in one object (RFC 8259 leaves them undefined; every
 *     consumer here would pick a different one),
 *   - numbers that do not fit a finite double (1e400).
 * Trees handed to the other functions of this header, of avro_schema.h and
 * filter.h must come from kaa__json_parse (or satisfy the same rules).
 *
 * Canonical form (what kaa__json_canonical* emit and what hashes cover):
 *   - no whitespace; object keys sorted by the bytes of their UTF-8 form;
 *   - strings as yajl_gen writes them: UTF-8, with only '"', '\\' and
 *     control characters (< 0x20) escaped (\b \f \n \r \t, others \u00XX);
 *   - numbers by value: an integer literal that fits int64 is printed as a
 *     decimal integer ("-0" becomes "0"); any other number is read as a
 *     double d; an integral d with -2^63 <= d < 2^63 is printed as an integer
 *     (so 1.0, 1e0 and 1 are equal), anything else with the fewest
 *     significant digits (1-17) that read back as the same double, %g style.
 *   Two documents are equal (kaa__json_equal) when their canonical forms
 *   are the same bytes. Assumes the C locale for LC_NUMERIC (strtod).
 *
 * Error strings: every function that takes (err, errlen) writes one line
 *   "<path>: <message>"  e.g.  "$.a.b[3]: expected int, got string"
 * where <path> starts with "$" (the document root) and continues with
 * .key (keys made only of [A-Za-z0-9_$-]), ["key"] (any other key, JSON
 * escaped) and [index]; a path that does not fit KAA_JSON_PATH_MAX ends
 * with "...". kaa__json_err_msg splits such a string for an API response.
 * err may be NULL or errlen 0; output is always NUL-terminated and cut to
 * errlen.
 *
 * Thread-safety: every function is pure (no globals, no I/O) and may be
 * called from any thread; distinct calls share nothing.
 *
 * Memory: daemon code; allocation failure (also yajl's) aborts through
 * kaa__oom() (base/alloc.h): no function here reports it as an error.
 */
#ifndef KAA_JSON_MERGE_H
#define KAA_JSON_MERGE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

/* Default limits for documents: configurations, profiles, patches. */
#define KAA_JSON_MAX_BYTES (1024 * 1024)
#define KAA_JSON_MAX_DEPTH 64
/* Longest path in an error string, including "$" and the NUL. */
#define KAA_JSON_PATH_MAX 256
/* Recommended size of an err buffer: the longest path plus a message. */
#define KAA_JSON_ERR_SIZE (KAA_JSON_PATH_MAX + 256)
/* A SHA-256 in lowercase hex, with its NUL. */
#define KAA_SHA256_HEX_SIZE 65

/* ---- parsing ------------------------------------------------------- */

/* Parses json[0..len) (no NUL needed) into *out (caller frees with
 * yajl_tree_free). Errors: KAA_ERR_TOO_BIG over max_bytes, KAA_ERR_INVAL
 * for malformed JSON or any rule above (depth, NUL, duplicate key, number
 * range). *out is NULL on error. */
int kaa__json_parse(const char *json, size_t len, size_t max_bytes, int max_depth, yajl_val *out,
		    char *err, size_t errlen);

/* The value of member key of object obj; NULL when obj is not an object
 * (or NULL) or has no such member. Borrowed from the tree. */
yajl_val kaa__json_member(yajl_val obj, const char *key);

/* True when v is a number written as an integer literal (no fraction, no
 * exponent) that fits int64; stores it in *out (may be NULL). Unlike
 * yajl's own flag this accepts INT64_MIN. */
bool kaa__json_int64(yajl_val v, int64_t *out);
/* The number's value as a double (finite for trees from kaa__json_parse). */
double kaa__json_double(yajl_val v);

/* ---- canonical form, equality, hash -------------------------------- */

/* A yajl generator that allocates through the abort hook: never NULL.
 * Free with yajl_gen_free. */
yajl_gen kaa__json_gen_new(void);
/* Writes v to g in canonical form. Returns KAA_OK, or KAA_ERR_INVAL when
 * yajl_gen refuses (e.g. nesting over 128). */
int kaa__json_gen_canonical(yajl_gen g, yajl_val v);
/* *out (malloc'd, NUL-terminated, caller frees) = canonical text of v.
 * KAA_ERR_INVAL as above. */
int kaa__json_canonical_tree(yajl_val v, char **out, size_t *outlen);
/* Parse (KAA_JSON_MAX_BYTES/KAA_JSON_MAX_DEPTH) then canonicalise. Errors
 * of kaa__json_parse. */
int kaa__json_canonicalize(const char *json, size_t len, char **out, size_t *outlen, char *err,
			   size_t errlen);
/* Equality of canonical forms without building them. NULL equals NULL. */
bool kaa__json_equal(yajl_val a, yajl_val b);
/* hex = lowercase SHA-256 of data[0..len). KAA_ERR_INTERNAL if OpenSSL
 * fails (it does not for SHA-256 unless the library is broken). */
int kaa__json_sha256_hex(const void *data, size_t len, char hex[KAA_SHA256_HEX_SIZE]);
/* Copies the result of a finished yajl_gen into a malloc'd NUL-terminated
 * string. KAA_ERR_TOO_BIG when longer than max_bytes. */
int kaa__json_gen_take(yajl_gen g, size_t max_bytes, char **out, size_t *outlen);

/* ---- configuration merge ------------------------------------------- */

/* One group's configuration: a JSON document and the group's weight. */
typedef struct kaa__config_part {
	const char *json;
	size_t len;
	int64_t weight;
} kaa__config_part;

/* Merges parts[0..n) from the lowest to the highest weight; at equal
 * weights a later element of parts wins (callers keep group weights unique
 * per application, as the original platform does, or pass parts in a
 * stable order). Rules, applied at every level:
 *   - the highest-weighted value decides: if it is not an object it is the
 *     result (scalars, arrays and null replace whatever lies below);
 *   - if it is an object, it is merged key by key with the objects directly
 *     below it, down to the first non-object (which is overridden and
 *     contributes nothing); the key's value is merged from the same parts
 *     by these rules.
 * null is an ordinary value here (it replaces; it does not delete; use a
 * merge patch for deletion). n == 0 gives "{}". Each part is limited to
 * KAA_JSON_MAX_BYTES/KAA_JSON_MAX_DEPTH, and so is the result.
 * Output: *out canonical JSON (malloc'd, NUL-terminated, caller frees),
 * *outlen (may be NULL) its length, hash the SHA-256 hex of *out.
 * Errors: KAA_ERR_INVAL (a part is not valid JSON; err reads
 * "<path>: parts[<i>]: <reason>", i the index in parts), KAA_ERR_TOO_BIG.
 * On error *out is NULL and hash "". */
int kaa__config_merge(const kaa__config_part *parts, size_t n, char **out, size_t *outlen,
		      char hash[KAA_SHA256_HEX_SIZE], char *err, size_t errlen);

/* ---- RFC 7386 JSON merge patch ------------------------------------- */

/* result = MergePatch(target, patch) as RFC 7386 section 2 defines it:
 * a non-object patch replaces the target (arrays are replaced whole, and
 * nulls inside a non-object patch are kept verbatim); an object patch
 * turns a non-object target into {} and then, per member, null deletes the
 * key and any other value is merged recursively. target may be NULL
 * (tlen ignored) for "undefined". Output canonical, malloc'd,
 * NUL-terminated; outlen may be NULL. Inputs and result limited to
 * KAA_JSON_MAX_BYTES/KAA_JSON_MAX_DEPTH. Errors: KAA_ERR_INVAL (bad JSON;
 * err reads "<path>: target document: <reason>" or "... patch document:
 * ..."), KAA_ERR_TOO_BIG. On error *out is NULL. */
int kaa__json_merge_patch_apply(const char *target, size_t tlen, const char *patch, size_t plen,
				char **out, size_t *outlen, char *err, size_t errlen);
/* patch = a merge patch with apply(old, patch) == new (canonical
 * equality). Keys present in old and absent from new become null; equal
 * values are left out; objects present in both are diffed recursively;
 * anything else is the new value whole. Equal documents give "{}" when
 * both are objects, else new itself.
 * A merge patch cannot set an object member to null (null means delete),
 * so when new has a null member inside an object (outside arrays) that old
 * does not have with the same null, there is no patch: KAA_ERR_INVAL with
 * the path in new: "$.a.b: new document: null member cannot be expressed
 * in a merge patch". Bad JSON: "<path>: old document: ..." or "... new
 * document: ...". Other errors as kaa__json_merge_patch_apply. */
int kaa__json_merge_patch_diff(const char *old, size_t olen, const char *new_, size_t nlen,
			       char **patch, size_t *patchlen, char *err, size_t errlen);

/* Tree forms of the three operations above (inputs from kaa__json_parse;
 * output written to g in canonical form; path-less errors). Used by the
 * fuzz targets and by callers that already hold parsed trees. */
int kaa__json_merge_patch_apply_gen(yajl_gen g, yajl_val target, yajl_val patch);
int kaa__json_merge_patch_diff_gen(yajl_gen g, yajl_val old, yajl_val new_, char *err,
				   size_t errlen);
/* vals[0..n) ordered from lowest to highest weight; NULL entries are
 * "absent". */
int kaa__json_merge_gen(yajl_gen g, yajl_val const *vals, size_t n);

/* ---- paths and error strings (shared by avro_schema.c, filter.c) -- */

typedef struct kaa__json_path {
	size_t len;
	size_t elided_at; /* 0, or where "..." was appended */
	char buf[KAA_JSON_PATH_MAX];
} kaa__json_path;

/* p = "$". */
void kaa__json_path_init(kaa__json_path *p);
/* Append .key / ["key"] / [i]; return a mark for kaa__json_path_pop. */
size_t kaa__json_path_key(kaa__json_path *p, const char *key);
size_t kaa__json_path_index(kaa__json_path *p, size_t i);
void kaa__json_path_pop(kaa__json_path *p, size_t mark);
/* err = "<path>: <printf fmt...>" (path "$" when p is NULL). */
void kaa__json_errf(char *err, size_t errlen, const kaa__json_path *p, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* buf = s as a quoted JSON string, cut to at most 40 characters of s with
 * "..." inside the quotes; for user strings inside error messages. */
const char *kaa__json_quote(char *buf, size_t n, const char *s);
/* For "<path>: <message>": returns the message and sets *pathlen to the
 * length of the path, or returns err with *pathlen 0 when err does not
 * start with a path. Never NULL for a non-NULL err. */
const char *kaa__json_err_msg(const char *err, size_t *pathlen);

#endif
