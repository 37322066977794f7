/* JSON layer: bounded parsing, canonical form and hash, weighted
 * configuration merge, RFC 7386 merge patch apply and diff. */
#include "cu_main.h"
#include "base/error.h"
#include "json/json_merge.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Canonical form of a literal, for comparisons (asserts it parses). */
static char *canon(const char *json)
{
	char *out = NULL;
	char err[KAA_JSON_ERR_SIZE];
	int rc = kaa__json_canonicalize(json, strlen(json), &out, NULL, err, sizeof(err));
	if (rc != KAA_OK)
		fprintf(stderr, "canon(%s): %s\n", json, err);
	CU_ASSERT_EQUAL_FATAL(rc, KAA_OK);
	return out;
}

static void assert_canon(const char *in, const char *want)
{
	char *got = canon(in);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "canonical of %s: got %s want %s\n", in, got, want);
	CU_ASSERT_STRING_EQUAL(got, want);
	free(got);
}

static void test_parse_errors(void)
{
	static const struct {
		const char *json;
		int rc;
		const char *err; /* prefix of the message */
	} cases[] = {
		{"", KAA_ERR_INVAL, "$: malformed JSON"},
		{"{", KAA_ERR_INVAL, "$: malformed JSON"},
		{"{} x", KAA_ERR_INVAL, "$: malformed JSON"},
		{"[1,]", KAA_ERR_INVAL, "$: malformed JSON"},
		{"/* c */ 1", KAA_ERR_INVAL, "$: comments are not allowed (offset 0)"},
		{"{\"a\":1,\"b\":{\"c\":1,\"c\":2}}", KAA_ERR_INVAL, "$.b: duplicate key \"c\""},
		{"{\"a b\":[0,{\"x\":1,\"x\":1}]}", KAA_ERR_INVAL,
		 "$[\"a b\"][1]: duplicate key \"x\""},
		{"[\"a\\u0000b\"]", KAA_ERR_INVAL, "$: \\u0000 in a string at offset 3"},
		{"{\"a\":1e400}", KAA_ERR_INVAL, "$.a: number out of range"},
		{"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]"
		 "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
		 KAA_ERR_INVAL, "$: nesting deeper than 64 at offset 64"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		yajl_val v = (yajl_val)1;
		char err[KAA_JSON_ERR_SIZE];
		int rc = kaa__json_parse(cases[i].json, strlen(cases[i].json), KAA_JSON_MAX_BYTES,
					 KAA_JSON_MAX_DEPTH, &v, err, sizeof(err));
		if (rc != cases[i].rc || strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
			fprintf(stderr, "case %zu: rc %d err %s\n", i, rc, err);
		CU_ASSERT_EQUAL(rc, cases[i].rc);
		CU_ASSERT_PTR_NULL(v);
		CU_ASSERT_NSTRING_EQUAL(err, cases[i].err, strlen(cases[i].err));
	}

	/* embedded NUL byte, size limit, exactly max depth */
	yajl_val v;
	char err[KAA_JSON_ERR_SIZE];
	CU_ASSERT_EQUAL(kaa__json_parse("[1,\0]", 5, 100, 8, &v, err, sizeof(err)), KAA_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(err, "$: NUL byte at offset 3");
	CU_ASSERT_EQUAL(kaa__json_parse("[1,2,3]", 7, 6, 8, &v, err, sizeof(err)), KAA_ERR_TOO_BIG);
	CU_ASSERT_STRING_EQUAL(err, "$: document of 7 bytes exceeds the limit of 6");
	CU_ASSERT_EQUAL(kaa__json_parse("[[1]]", 5, 100, 2, &v, err, sizeof(err)), KAA_OK);
	yajl_tree_free(v);
	CU_ASSERT_EQUAL(kaa__json_parse("[[[1]]]", 7, 100, 2, &v, err, sizeof(err)), KAA_ERR_INVAL);
	/* brackets inside strings do not count; escaped quotes do not end them */
	CU_ASSERT_EQUAL(kaa__json_parse("[\"[[[\\\"[[[\"]", 12, 100, 1, &v, err, sizeof(err)),
			KAA_OK);
	yajl_tree_free(v);
	/* err may be NULL */
	CU_ASSERT_EQUAL(kaa__json_parse("{", 1, 100, 8, &v, NULL, 0), KAA_ERR_INVAL);
}

static void test_numbers(void)
{
	yajl_val v;
	int64_t i;

	const char *nums =
		"[-9223372036854775808,9223372036854775807,9223372036854775808,1.0,1e2,-0]";
	CU_ASSERT_EQUAL_FATAL(kaa__json_parse(nums, strlen(nums), 1000, 4, &v, NULL, 0), KAA_OK);
	CU_ASSERT_TRUE(kaa__json_int64(v->u.array.values[0], &i));
	CU_ASSERT_EQUAL(i, INT64_MIN);
	CU_ASSERT_TRUE(kaa__json_int64(v->u.array.values[1], &i));
	CU_ASSERT_EQUAL(i, INT64_MAX);
	CU_ASSERT_FALSE(kaa__json_int64(v->u.array.values[2], &i));
	CU_ASSERT_FALSE(kaa__json_int64(v->u.array.values[3], &i));
	CU_ASSERT_FALSE(kaa__json_int64(v->u.array.values[4], &i));
	CU_ASSERT_DOUBLE_EQUAL(kaa__json_double(v->u.array.values[4]), 100.0, 1e-9);
	CU_ASSERT_TRUE(kaa__json_int64(v->u.array.values[5], &i));
	CU_ASSERT_EQUAL(i, 0);
	yajl_tree_free(v);
}

static void test_canonical(void)
{
	assert_canon(" { \"b\" : 1 , \"a\" : { \"d\":[3, 2], \"c\": null } } ",
		     "{\"a\":{\"c\":null,\"d\":[3,2]},\"b\":1}");
	assert_canon("[1.0, 1e2, -0, -0.0, 0.1, 1.5e300, 2.5, -1e-7, 123456789012345678]",
		     "[1,100,0,0,0.1,1.5e+300,2.5,-1e-07,123456789012345678]");
	assert_canon("[9223372036854775807, -9223372036854775808, 9223372036854775808]",
		     "[9223372036854775807,-9223372036854775808,9.223372036854776e+18]");
	assert_canon("[0.30000000000000004, 1e21, 1E+2]", "[0.30000000000000004,1e+21,100]");
	assert_canon("\"tab\\there \\u00e9 \\/ \\\"q\\\"\"", "\"tab\\there \xc3\xa9 / \\\"q\\\"\"");
	/* byte order of UTF-8 keys; uppercase before lowercase */
	assert_canon("{\"\xc3\xa9\":1,\"z\":2,\"Z\":3,\"\":4}",
		     "{\"\":4,\"Z\":3,\"z\":2,\"\xc3\xa9\":1}");
	assert_canon("true", "true");
	assert_canon("null", "null");
}

static void test_equal(void)
{
	static const struct {
		const char *a, *b;
		bool eq;
	} cases[] = {
		{"{\"a\":1,\"b\":[1,2]}", "{\"b\":[1,2.0],\"a\":1e0}", true},
		{"{\"a\":1}", "{\"a\":1,\"b\":null}", false},
		{"[1,2]", "[2,1]", false},
		{"\"1\"", "1", false},
		{"null", "false", false},
		{"0.1", "0.10", true},
		{"{\"a\":{\"x\":[{}]}}", "{\"a\":{\"x\":[{}]}}", true},
		{"{\"a\":1,\"b\":2}", "{\"a\":1,\"c\":2}", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		yajl_val a, b;
		CU_ASSERT_EQUAL_FATAL(
			kaa__json_parse(cases[i].a, strlen(cases[i].a), 1000, 8, &a, NULL, 0),
			KAA_OK);
		CU_ASSERT_EQUAL_FATAL(
			kaa__json_parse(cases[i].b, strlen(cases[i].b), 1000, 8, &b, NULL, 0),
			KAA_OK);
		CU_ASSERT_EQUAL(kaa__json_equal(a, b), cases[i].eq);
		CU_ASSERT_EQUAL(kaa__json_equal(b, a), cases[i].eq);
		yajl_tree_free(a);
		yajl_tree_free(b);
	}
	CU_ASSERT_TRUE(kaa__json_equal(NULL, NULL));
}

static void test_hash(void)
{
	char h1[KAA_SHA256_HEX_SIZE], h2[KAA_SHA256_HEX_SIZE];
	kaa__config_part a = {"{\"b\":1, \"a\":{\"y\":[1,2],\"x\":\"s\"}}", 0, 0};
	kaa__config_part b = {"{\"a\":{\"x\":\"s\",\"y\":[1.0,2]},\"b\":1}", 0, 0};
	kaa__config_part c = {"{\"a\":{\"x\":\"s\",\"y\":[2,1]},\"b\":1}", 0, 0};
	char *o1, *o2;

	a.len = strlen(a.json);
	b.len = strlen(b.json);
	c.len = strlen(c.json);
	CU_ASSERT_EQUAL(kaa__json_sha256_hex("{}", 2, h1), KAA_OK);
	CU_ASSERT_STRING_EQUAL(h1,
			       "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
	CU_ASSERT_EQUAL_FATAL(kaa__config_merge(&a, 1, &o1, NULL, h1, NULL, 0), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__config_merge(&b, 1, &o2, NULL, h2, NULL, 0), KAA_OK);
	CU_ASSERT_STRING_EQUAL(o1, "{\"a\":{\"x\":\"s\",\"y\":[1,2]},\"b\":1}");
	CU_ASSERT_STRING_EQUAL(o1, o2);
	CU_ASSERT_STRING_EQUAL(h1, h2); /* key order and 1.0 vs 1 do not matter */
	CU_ASSERT_EQUAL(strlen(h1), 64);
	free(o2);
	CU_ASSERT_EQUAL_FATAL(kaa__config_merge(&c, 1, &o2, NULL, h2, NULL, 0), KAA_OK);
	CU_ASSERT_STRING_NOT_EQUAL(h1, h2); /* array order does */
	free(o1);
	free(o2);
}

static void test_config_merge(void)
{
	/* deliberately not sorted by weight */
	kaa__config_part parts[] = {
		{"{\"log\":{\"level\":\"debug\"},\"servers\":[\"c\"],\"ui\":\"x\"}", 0, 30},
		{"{\"log\":{\"level\":\"info\",\"file\":\"/var/log/a\"},\"servers\":[\"a\",\"b\"],"
		 "\"timeout\":5,\"ui\":{\"theme\":\"dark\"},\"opt\":1}",
		 0, 0},
		{"{\"timeout\":10,\"log\":{\"rotate\":true},\"opt\":null}", 0, 20},
	};
	char hash[KAA_SHA256_HEX_SIZE], hash2[KAA_SHA256_HEX_SIZE], err[256];
	char *out = NULL, *out2 = NULL;
	size_t len = 0;

	for (size_t i = 0; i < 3; i++)
		parts[i].len = strlen(parts[i].json);
	CU_ASSERT_EQUAL_FATAL(kaa__config_merge(parts, 3, &out, &len, hash, err, sizeof(err)),
			      KAA_OK);
	CU_ASSERT_STRING_EQUAL(out, "{\"log\":{\"file\":\"/var/log/a\",\"level\":\"debug\","
				    "\"rotate\":true},\"opt\":null,\"servers\":[\"c\"],"
				    "\"timeout\":10,\"ui\":\"x\"}");
	CU_ASSERT_EQUAL(len, strlen(out));
	/* the hash is the SHA-256 of the canonical text */
	CU_ASSERT_EQUAL(kaa__json_sha256_hex(out, len, hash2), KAA_OK);
	CU_ASSERT_STRING_EQUAL(hash, hash2);
	free(out);

	/* order of the array does not matter, only weights */
	kaa__config_part rev[] = {parts[2], parts[0], parts[1]};
	CU_ASSERT_EQUAL_FATAL(kaa__config_merge(rev, 3, &out2, NULL, hash2, err, sizeof(err)),
			      KAA_OK);
	CU_ASSERT_STRING_EQUAL(hash, hash2);
	free(out2);

	/* an object above a scalar starts afresh; the scalar is not merged */
	kaa__config_part over[] = {
		{"{\"a\":{\"x\":1}}", 0, 1},
		{"{\"a\":5}", 0, 2},
		{"{\"a\":{\"y\":2}}", 0, 3},
	};
	for (size_t i = 0; i < 3; i++)
		over[i].len = strlen(over[i].json);
	CU_ASSERT_EQUAL_FATAL(kaa__config_merge(over, 3, &out, NULL, hash, NULL, 0), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out, "{\"a\":{\"y\":2}}");
	free(out);

	/* equal weights: the later part wins */
	kaa__config_part tie[] = {{"{\"a\":1}", 7, 5}, {"{\"a\":2}", 7, 5}};
	CU_ASSERT_EQUAL_FATAL(kaa__config_merge(tie, 2, &out, NULL, hash, NULL, 0), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out, "{\"a\":2}");
	free(out);

	/* a top-level non-object replaces everything below */
	kaa__config_part top[] = {{"{\"a\":1}", 7, 1}, {"[1,2]", 5, 2}};
	CU_ASSERT_EQUAL_FATAL(kaa__config_merge(top, 2, &out, NULL, hash, NULL, 0), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out, "[1,2]");
	free(out);

	/* no parts */
	CU_ASSERT_EQUAL_FATAL(kaa__config_merge(NULL, 0, &out, NULL, hash, NULL, 0), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out, "{}");
	CU_ASSERT_STRING_EQUAL(hash,
			       "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
	free(out);

	/* a bad part names its index */
	kaa__config_part bad[] = {{"{\"a\":1}", 7, 1}, {"{\"a\":{\"b\":1,\"b\":2}}", 19, 2}};
	CU_ASSERT_EQUAL(kaa__config_merge(bad, 2, &out, NULL, hash, err, sizeof(err)),
			KAA_ERR_INVAL);
	CU_ASSERT_PTR_NULL(out);
	CU_ASSERT_STRING_EQUAL(err, "$.a: parts[1]: duplicate key \"b\"");
	CU_ASSERT_STRING_EQUAL(hash, "");
}

typedef struct patch_case {
	const char *target, *patch, *result;
} patch_case;

/* RFC 7386 section 3 and appendix A. */
static const patch_case rfc_cases[] = {
	{"{\"title\":\"Goodbye!\",\"author\":{\"givenName\":\"John\",\"familyName\":\"Doe\"},"
	 "\"tags\":[\"example\",\"sample\"],\"content\":\"This will be unchanged\"}",
	 "{\"title\":\"Hello!\",\"phoneNumber\":\"+01-123-456-7890\","
	 "\"author\":{\"familyName\":null},\"tags\":[\"example\"]}",
	 "{\"title\":\"Hello!\",\"author\":{\"givenName\":\"John\"},\"tags\":[\"example\"],"
	 "\"content\":\"This will be unchanged\",\"phoneNumber\":\"+01-123-456-7890\"}"},
	{"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
	{"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
	{"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
	{"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
	{"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
	{"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
	{"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"},
	{"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
	{"[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"},
	{"{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"},
	{"{\"a\":\"foo\"}", "null", "null"},
	{"{\"a\":\"foo\"}", "\"bar\"", "\"bar\""},
	{"{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
	{"[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"},
	{"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
	/* ours: nulls inside arrays are values; undefined target */
	{"{\"a\":1}", "{\"a\":[null,{\"b\":null}]}", "{\"a\":[null,{\"b\":null}]}"},
	{NULL, "{\"a\":{\"b\":null,\"c\":1}}", "{\"a\":{\"c\":1}}"},
};

static void test_patch_apply_rfc(void)
{
	for (size_t i = 0; i < sizeof(rfc_cases) / sizeof(rfc_cases[0]); i++) {
		const patch_case *pc = &rfc_cases[i];
		char *out = NULL, *want = canon(pc->result);
		char err[KAA_JSON_ERR_SIZE];
		int rc = kaa__json_merge_patch_apply(
			pc->target, pc->target ? strlen(pc->target) : 0, pc->patch,
			strlen(pc->patch), &out, NULL, err, sizeof(err));
		CU_ASSERT_EQUAL(rc, KAA_OK);
		if (rc == KAA_OK && strcmp(out, want) != 0)
			fprintf(stderr, "rfc case %zu: got %s want %s\n", i, out, want);
		CU_ASSERT_STRING_EQUAL(out ? out : "", want);
		free(out);
		free(want);
	}
}

/* apply(old, diff(old, new)) == new, plus the exact patch where given. */
static void test_patch_diff_roundtrip(void)
{
	static const struct {
		const char *old, *new_, *patch; /* patch NULL: not checked */
	} cases[] = {
		{"{\"a\":1,\"b\":{\"c\":2,\"d\":3},\"e\":[1,2]}",
		 "{\"a\":1,\"b\":{\"c\":2,\"d\":4,\"f\":5},\"e\":[1]}",
		 "{\"b\":{\"d\":4,\"f\":5},\"e\":[1]}"},
		{"{\"a\":1,\"b\":2}", "{\"a\":1}", "{\"b\":null}"},
		{"{\"a\":1}", "{\"a\":1.0}", "{}"},
		{"{\"a\":{\"x\":1}}", "{\"a\":5}", "{\"a\":5}"},
		{"{\"a\":5}", "{\"a\":{\"x\":1}}", "{\"a\":{\"x\":1}}"},
		{"{\"a\":{\"x\":1,\"y\":{\"z\":1}}}", "{\"a\":{}}",
		 "{\"a\":{\"x\":null,\"y\":null}}"},
		{"[1,2]", "[1,2]", "[1,2]"},
		{"[1,2]", "{\"a\":[null]}", "{\"a\":[null]}"},
		{"{\"a\":1}", "null", "null"},
		{"null", "{\"a\":1}", "{\"a\":1}"},
		{"\"s\"", "7", "7"},
		{"{\"keep\":null,\"x\":1}", "{\"keep\":null,\"x\":2}", "{\"x\":2}"},
		{"{\"a\":[{\"b\":null}]}", "{\"a\":[{\"b\":null},1]}", "{\"a\":[{\"b\":null},1]}"},
		{"{}", "{\"\xc3\xa9\":{\"\":[]},\"a.b\":true}", NULL},
		{"{\"deep\":{\"a\":{\"b\":{\"c\":{\"d\":1}}}}}",
		 "{\"deep\":{\"a\":{\"b\":{\"c\":{}}}}}",
		 "{\"deep\":{\"a\":{\"b\":{\"c\":{\"d\":null}}}}}"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *patch = NULL, *out = NULL, *want = canon(cases[i].new_);
		char err[KAA_JSON_ERR_SIZE];
		size_t plen = 0;
		int rc = kaa__json_merge_patch_diff(cases[i].old, strlen(cases[i].old),
						    cases[i].new_, strlen(cases[i].new_), &patch,
						    &plen, err, sizeof(err));
		CU_ASSERT_EQUAL_FATAL(rc, KAA_OK);
		if (cases[i].patch && strcmp(patch, cases[i].patch) != 0)
			fprintf(stderr, "diff case %zu: got %s want %s\n", i, patch,
				cases[i].patch);
		if (cases[i].patch)
			CU_ASSERT_STRING_EQUAL(patch, cases[i].patch);
		rc = kaa__json_merge_patch_apply(cases[i].old, strlen(cases[i].old), patch, plen,
						 &out, NULL, err, sizeof(err));
		CU_ASSERT_EQUAL_FATAL(rc, KAA_OK);
		if (strcmp(out, want) != 0)
			fprintf(stderr, "roundtrip case %zu: got %s want %s\n", i, out, want);
		CU_ASSERT_STRING_EQUAL(out, want);
		free(patch);
		free(out);
		free(want);
	}
	/* the RFC's own pairs round-trip through diff too, when expressible */
	for (size_t i = 0; i < sizeof(rfc_cases) / sizeof(rfc_cases[0]); i++) {
		const patch_case *pc = &rfc_cases[i];
		char *patch = NULL, *out = NULL, *want;
		size_t plen;
		if (!pc->target)
			continue;
		CU_ASSERT_EQUAL_FATAL(kaa__json_merge_patch_diff(pc->target, strlen(pc->target),
								 pc->result, strlen(pc->result),
								 &patch, &plen, NULL, 0),
				      KAA_OK);
		CU_ASSERT_EQUAL_FATAL(kaa__json_merge_patch_apply(pc->target, strlen(pc->target),
								  patch, plen, &out, NULL, NULL, 0),
				      KAA_OK);
		want = canon(pc->result);
		CU_ASSERT_STRING_EQUAL(out, want);
		free(patch);
		free(out);
		free(want);
	}
}

/* a string literal and its length */
#define S(x) x, strlen(x)

static void test_patch_errors(void)
{
	char *out = (char *)1;
	char err[KAA_JSON_ERR_SIZE];

	/* a null member cannot be produced by a merge patch */
	CU_ASSERT_EQUAL(kaa__json_merge_patch_diff(S("{\"a\":{\"b\":1}}"),
						   S("{\"a\":{\"b\":null}}"), &out, NULL, err,
						   sizeof(err)),
			KAA_ERR_INVAL);
	CU_ASSERT_PTR_NULL(out);
	CU_ASSERT_STRING_EQUAL(
		err, "$.a.b: new document: null member cannot be expressed in a merge patch");
	CU_ASSERT_EQUAL(kaa__json_merge_patch_diff(S("[]"), S("{\"x\":{\"y\":[],\"z\":null}}"),
						   &out, NULL, err, sizeof(err)),
			KAA_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(
		err, "$.x.z: new document: null member cannot be expressed in a merge patch");
	CU_ASSERT_EQUAL(kaa__json_merge_patch_diff(S("{"), S("{}"), &out, NULL, err, sizeof(err)),
			KAA_ERR_INVAL);
	CU_ASSERT_NSTRING_EQUAL(err, "$: old document: malformed JSON", 31);
	CU_ASSERT_EQUAL(kaa__json_merge_patch_apply(S("{}"), S("{\"a\":1,\"a\":2}"), &out, NULL,
						    err, sizeof(err)),
			KAA_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(err, "$: patch document: duplicate key \"a\"");
	CU_ASSERT_EQUAL(kaa__json_merge_patch_apply(S("x"), S("{}"), &out, NULL, err, sizeof(err)),
			KAA_ERR_INVAL);
	CU_ASSERT_NSTRING_EQUAL(err, "$: target document: malformed JSON", 34);
	CU_ASSERT_PTR_NULL(out);
}

static void test_paths(void)
{
	kaa__json_path p;
	char err[128], q[64], big[400];
	size_t m, pl;
	const char *msg;

	kaa__json_path_init(&p);
	CU_ASSERT_STRING_EQUAL(p.buf, "$");
	kaa__json_path_key(&p, "sensors");
	m = kaa__json_path_index(&p, 3);
	kaa__json_path_key(&p, "a \"b\".c");
	CU_ASSERT_STRING_EQUAL(p.buf, "$.sensors[3][\"a \\\"b\\\".c\"]");
	kaa__json_path_pop(&p, m);
	CU_ASSERT_STRING_EQUAL(p.buf, "$.sensors");
	kaa__json_path_key(&p, "$regex");
	CU_ASSERT_STRING_EQUAL(p.buf, "$.sensors.$regex");
	kaa__json_errf(err, sizeof(err), &p, "expected %s, got %s", "int", "string");
	CU_ASSERT_STRING_EQUAL(err, "$.sensors.$regex: expected int, got string");
	msg = kaa__json_err_msg(err, &pl);
	CU_ASSERT_EQUAL(pl, strlen("$.sensors.$regex"));
	CU_ASSERT_STRING_EQUAL(msg, "expected int, got string");

	/* splitting with quoted keys containing ": " */
	msg = kaa__json_err_msg("$[\"a: b\"][2]: bad", &pl);
	CU_ASSERT_EQUAL(pl, 12);
	CU_ASSERT_STRING_EQUAL(msg, "bad");
	msg = kaa__json_err_msg("no path here", &pl);
	CU_ASSERT_EQUAL(pl, 0);
	CU_ASSERT_STRING_EQUAL(msg, "no path here");

	/* overlong paths end in "..." and stay splittable */
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	kaa__json_path_init(&p);
	kaa__json_path_key(&p, "a");
	m = kaa__json_path_key(&p, big);
	kaa__json_path_key(&p, "b");
	CU_ASSERT_STRING_EQUAL(p.buf, "$.a...");
	kaa__json_errf(err, sizeof(err), &p, "x");
	msg = kaa__json_err_msg(err, &pl);
	CU_ASSERT_EQUAL(pl, 6);
	CU_ASSERT_STRING_EQUAL(msg, "x");
	kaa__json_path_pop(&p, m);
	kaa__json_path_key(&p, "c");
	CU_ASSERT_STRING_EQUAL(p.buf, "$.a.c");
	for (int i = 0; i < 100; i++)
		kaa__json_path_index(&p, 1000000 + (size_t)i);
	CU_ASSERT(p.len < KAA_JSON_PATH_MAX);
	CU_ASSERT_STRING_EQUAL(p.buf + p.len - 3, "...");

	/* quoting user strings */
	CU_ASSERT_STRING_EQUAL(kaa__json_quote(q, sizeof(q), "a\"b\n"), "\"a\\\"b\\u000a\"");
	CU_ASSERT_STRING_EQUAL(kaa__json_quote(q, sizeof(q), big),
			       "\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...\"");
	/* a small err buffer is cut, still terminated */
	kaa__json_errf(err, 5, &p, "long message");
	CU_ASSERT_EQUAL(strlen(err), 4);
}

static const kaa__cu_test tests[] = {
	{"parse errors", test_parse_errors},
	{"numbers", test_numbers},
	{"canonical form", test_canonical},
	{"equality", test_equal},
	{"hash", test_hash},
	{"config merge", test_config_merge},
	{"merge patch RFC 7386 examples", test_patch_apply_rfc},
	{"merge patch diff round trip", test_patch_diff_roundtrip},
	{"merge patch errors", test_patch_errors},
	{"paths and error strings", test_paths},
};

int main(void)
{
	return kaa__cu_run("json_merge", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
