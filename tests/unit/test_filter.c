/* Endpoint-group filters: compile errors with paths, every operator,
 * MongoDB-style array and missing-field semantics. */
#include "cu_main.h"
#include "base/error.h"
#include "json/filter.h"
#include "json/json_merge.h"

#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(x) x, strlen(x)

static const char *context =
	"{\"cp\":{\"model\":\"X100\",\"fw\":{\"major\":2,\"minor\":7},\"tags\":[\"beta\",\"eu\"],"
	"\"sensors\":[{\"type\":\"temp\",\"v\":21.5},{\"type\":\"hum\",\"v\":40},{\"v\":1}],"
	"\"serial\":\"AB-123\",\"battery\":null,\"count\":3,\"matrix\":[[1,2],[3]],"
	"\"note\":\"line1\\nLine2\",\"big\":9007199254740993},"
	"\"sp\":{\"tier\":\"gold\",\"tags\":[\"vip\"],\"weight\":10,\"loc\":{\"lat\":1.5,"
	"\"lon\":2}},"
	"\"ekh\":\"c2hhMQ==\",\"other\":1}";

static bool match(const char *filter)
{
	kaa__filter *f = NULL;
	char err[KAA_JSON_ERR_SIZE] = "";
	bool m = false;
	int rc = kaa__filter_compile(S(filter), &f, err, sizeof(err));

	if (rc != KAA_OK)
		fprintf(stderr, "filter rejected: %s\n  %s\n", err, filter);
	CU_ASSERT_EQUAL_FATAL(rc, KAA_OK);
	CU_ASSERT_EQUAL(kaa__filter_match(f, S(context), &m), KAA_OK);
	kaa__filter_free(f);
	return m;
}

static void test_operators(void)
{
	static const struct {
		const char *filter;
		bool want;
	} cases[] = {
		{"{}", true},
		/* implicit equality, dotted paths, implicit AND */
		{"{\"cp.model\":\"X100\"}", true},
		{"{\"cp.model\":\"X10\"}", false},
		{"{\"cp.model\":\"X100\",\"sp.tier\":\"gold\"}", true},
		{"{\"cp.model\":\"X100\",\"sp.tier\":\"silver\"}", false},
		{"{\"cp.fw.major\":2}", true},
		{"{\"cp.fw.major\":2.0}", true},
		{"{\"cp.fw.major\":\"2\"}", false},
		{"{\"cp.fw\":{\"minor\":7,\"major\":2}}", true}, /* key order does not matter */
		{"{\"cp.fw\":{\"major\":2}}", false},            /* whole-object equality */
		{"{\"ekh\":\"c2hhMQ==\"}", true},
		{"{\"cp.big\":9007199254740993}", true},
		{"{\"cp.big\":9007199254740992}", false},
		/* arrays: any element, index, whole array, fan-out into objects */
		{"{\"cp.tags\":\"eu\"}", true},
		{"{\"cp.tags\":[\"beta\",\"eu\"]}", true},
		{"{\"cp.tags\":[\"eu\",\"beta\"]}", false},
		{"{\"cp.tags.0\":\"beta\"}", true},
		{"{\"cp.tags.1\":\"beta\"}", false},
		{"{\"cp.tags.5\":\"beta\"}", false},
		{"{\"cp.sensors.type\":\"hum\"}", true},
		{"{\"cp.sensors.1.v\":40}", true},
		{"{\"cp.sensors.v\":{\"$gt\":30}}", true},
		{"{\"cp.sensors.v\":{\"$gt\":50}}", false},
		{"{\"cp.matrix\":[3]}", true}, /* one level into arrays only */
		{"{\"cp.matrix\":3}", false},
		/* $eq $ne */
		{"{\"sp.tier\":{\"$eq\":\"gold\"}}", true},
		{"{\"sp.tier\":{\"$ne\":\"gold\"}}", false},
		{"{\"sp.tier\":{\"$ne\":\"silver\"}}", true},
		{"{\"cp.tags\":{\"$ne\":\"eu\"}}", false},
		{"{\"cp.nothing\":{\"$ne\":1}}", true},
		/* null matches null and missing */
		{"{\"cp.battery\":null}", true},
		{"{\"cp.nothing\":null}", true},
		{"{\"cp.model\":null}", false},
		{"{\"cp.sensors.type\":null}", true}, /* the third sensor has no type */
		{"{\"cp.nothing\":{\"$ne\":null}}", false},
		/* comparisons: numbers with numbers, strings with strings */
		{"{\"sp.weight\":{\"$gt\":9}}", true},
		{"{\"sp.weight\":{\"$gt\":10}}", false},
		{"{\"sp.weight\":{\"$gte\":10}}", true},
		{"{\"sp.weight\":{\"$lt\":10.5}}", true},
		{"{\"sp.weight\":{\"$lte\":9.99}}", false},
		{"{\"sp.weight\":{\"$gt\":5,\"$lt\":20}}", true},
		{"{\"sp.weight\":{\"$gt\":\"5\"}}", false},
		{"{\"cp.model\":{\"$gte\":\"X\",\"$lt\":\"Y\"}}", true},
		{"{\"cp.model\":{\"$gt\":\"x\"}}", false},
		{"{\"cp.big\":{\"$gt\":9007199254740992}}", true},
		{"{\"sp.loc.lat\":{\"$gt\":1,\"$lt\":2}}", true},
		{"{\"cp.nothing\":{\"$lt\":1}}", false},
		/* $in $nin */
		{"{\"sp.tier\":{\"$in\":[\"silver\",\"gold\"]}}", true},
		{"{\"sp.tier\":{\"$in\":[]}}", false},
		{"{\"cp.tags\":{\"$in\":[\"us\",\"eu\"]}}", true},
		{"{\"sp.tier\":{\"$nin\":[\"silver\",\"gold\"]}}", false},
		{"{\"sp.tier\":{\"$nin\":[\"silver\"]}}", true},
		{"{\"cp.nothing\":{\"$in\":[1,null]}}", true},
		{"{\"cp.nothing\":{\"$nin\":[1]}}", true},
		/* $exists */
		{"{\"cp.battery\":{\"$exists\":true}}", true},
		{"{\"cp.nothing\":{\"$exists\":true}}", false},
		{"{\"cp.nothing\":{\"$exists\":false}}", true},
		{"{\"cp.sensors.type\":{\"$exists\":true}}", true},
		{"{\"cp.sensors.type\":{\"$exists\":false}}", false},
		{"{\"ekh\":{\"$exists\":true}}", true},
		{"{\"cp.model.x\":{\"$exists\":true}}", false},
		/* $regex */
		{"{\"cp.serial\":{\"$regex\":\"^AB-[0-9]{3}$\"}}", true},
		{"{\"cp.serial\":{\"$regex\":\"^ab\"}}", false},
		{"{\"cp.serial\":{\"$regex\":\"^ab\",\"$options\":\"i\"}}", true},
		{"{\"cp.tags\":{\"$regex\":\"^e\"}}", true},
		{"{\"sp.weight\":{\"$regex\":\"1\"}}", false},
		{"{\"cp.note\":{\"$regex\":\"^Line2$\"}}", false},
		{"{\"cp.note\":{\"$regex\":\"^Line2$\",\"$options\":\"m\"}}", true},
		{"{\"cp.serial\":{\"$regex\":\"[[:digit:]]+\"}}", true},
		/* $not */
		{"{\"cp.serial\":{\"$not\":{\"$regex\":\"^AB\"}}}", false},
		{"{\"cp.serial\":{\"$not\":{\"$regex\":\"^ZZ\"}}}", true},
		{"{\"sp.weight\":{\"$not\":{\"$gt\":5,\"$lt\":8}}}", true},
		{"{\"sp.weight\":{\"$not\":{\"$gt\":5,\"$lt\":20}}}", false},
		{"{\"cp.nothing\":{\"$not\":{\"$gt\":1}}}", true},
		/* $and $or $nor */
		{"{\"$and\":[{\"cp.model\":\"X100\"},{\"sp.weight\":10}]}", true},
		{"{\"$and\":[{\"cp.model\":\"X100\"},{\"sp.weight\":11}]}", false},
		{"{\"$or\":[{\"cp.model\":\"nope\"},{\"sp.weight\":10}]}", true},
		{"{\"$or\":[{\"cp.model\":\"nope\"},{\"sp.weight\":11}]}", false},
		{"{\"$nor\":[{\"cp.model\":\"nope\"},{\"sp.weight\":11}]}", true},
		{"{\"$nor\":[{\"cp.model\":\"X100\"}]}", false},
		{"{\"$and\":[{}]}", true},
		{"{\"$or\":[{\"$and\":[{\"cp.tags\":\"eu\"},{\"sp.tier\":{\"$in\":[\"gold\"]}}]},"
		 "{\"cp.model\":\"Z\"}],\"ekh\":{\"$regex\":\"==$\"}}",
		 true},
		/* the whole profile */
		{"{\"sp\":{\"tier\":\"gold\",\"tags\":[\"vip\"],\"weight\":10,\"loc\":{\"lon\":2,"
		 "\"lat\":1.5}}}",
		 true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = match(cases[i].filter);
		if (got != cases[i].want)
			fprintf(stderr, "filter %s: got %d want %d\n", cases[i].filter, got,
				cases[i].want);
		CU_ASSERT_EQUAL(got, cases[i].want);
	}
}

static void test_compile_errors(void)
{
	static const struct {
		const char *filter, *err;
	} cases[] = {
		{"[]", "$: expected a query document (object), got array"},
		{"{\"cp.model\":{\"$regx\":\"a\"}}",
		 "$[\"cp.model\"].$regx: unknown operator \"$regx\" (supported: $eq $ne $gt $gte $lt "
		 "$lte $in $nin $exists $regex $options $not)"},
		{"{\"$where\":\"1\"}",
		 "$.$where: unknown top-level operator \"$where\" (supported: $and $or $nor)"},
		{"{\"model\":1}", "$.model: field path \"model\" must start with cp, sp or ekh"},
		{"{\"cp..x\":1}", "$[\"cp..x\"]: empty component in field path \"cp..x\""},
		{"{\"cp.\":1}", "$[\"cp.\"]: empty component in field path \"cp.\""},
		{"{\"cp.$x\":1}", "$[\"cp.$x\"]: field path component \"cp.$x\" starts with '$'"},
		{"{\"ekh.x\":1}", "$[\"ekh.x\"]: ekh is a string: it has no sub-fields"},
		{"{\"\":1}", "$[\"\"]: empty field path"},
		{"{\"$and\":{}}", "$.$and: $and expects an array of query documents, got object"},
		{"{\"$or\":[]}", "$.$or: $or needs at least one query document"},
		{"{\"$nor\":[{\"cp.a\":1},5]}",
		 "$.$nor[1]: expected a query document (object), got number"},
		{"{\"$or\":[{\"cp.a\":{\"$gt\":{}}}]}",
		 "$.$or[0][\"cp.a\"].$gt: $gt expects a number or a string, got object"},
		{"{\"cp.a\":{\"$lte\":null}}",
		 "$[\"cp.a\"].$lte: $lte expects a number or a string, got null"},
		{"{\"cp.a\":{\"$in\":\"x\"}}", "$[\"cp.a\"].$in: $in expects an array, got string"},
		{"{\"cp.a\":{\"$exists\":1}}",
		 "$[\"cp.a\"].$exists: $exists expects true or false, got number"},
		{"{\"cp.a\":{\"$regex\":5}}",
		 "$[\"cp.a\"].$regex: $regex expects a string, got number"},
		{"{\"cp.a\":{\"$regex\":\"(a\"}}",
		 "$[\"cp.a\"].$regex: invalid regular expression: Unmatched ( or \\("},
		{"{\"cp.a\":{\"$regex\":\"(a)\\\\1\"}}",
		 "$[\"cp.a\"].$regex: back-references (\\1) are not supported"},
		{"{\"cp.a\":{\"$regex\":\"((a{100}){100})\"}}",
		 "$[\"cp.a\"].$regex: repetition bounds multiply to more than 1000"},
		{"{\"cp.a\":{\"$regex\":\"a\",\"$options\":\"g\"}}",
		 "$[\"cp.a\"].$regex: unsupported $options flag 'g' (supported: i, m)"},
		{"{\"cp.a\":{\"$options\":\"i\"}}",
		 "$[\"cp.a\"].$options: $options without $regex"},
		{"{\"cp.a\":{\"$gt\":1,\"b\":2}}",
		 "$[\"cp.a\"].b: field name \"b\" mixed with operators"},
		{"{\"cp.a\":{\"b\":2,\"$gt\":1}}",
		 "$[\"cp.a\"].$gt: operator \"$gt\" mixed with field names (an object value is "
		 "either all operators or a literal)"},
		{"{\"$not\":{\"cp.a\":1}}",
		 "$.$not: $not applies to a field: {\"path\": {\"$not\": {...}}}; use $nor to "
		 "negate a query"},
		{"{\"cp.a\":{\"$not\":\"x\"}}",
		 "$[\"cp.a\"].$not: $not expects an operator document such as {\"$regex\": ...}, got "
		 "string"},
		{"{\"cp.a\":{\"$not\":{}}}", "$[\"cp.a\"].$not: $not needs at least one operator"},
		{"{\"cp.a\":{\"$not\":{\"$foo\":1}}}",
		 "$[\"cp.a\"].$not.$foo: unknown operator \"$foo\" (supported: $eq $ne $gt $gte $lt "
		 "$lte $in $nin $exists $regex $options $not)"},
		{"{\"cp.a\":{\"$and\":[]}}",
		 "$[\"cp.a\"].$and: $and is a top-level operator, not a field operator"},
		{"{\"cp.a\":1,\"cp.a\":2}", "$: duplicate key \"cp.a\""},
		{"{\"cp.a\":", "$: malformed JSON"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kaa__filter *f = (kaa__filter *)1;
		char err[KAA_JSON_ERR_SIZE] = "";
		int rc = kaa__filter_compile(S(cases[i].filter), &f, err, sizeof(err));
		bool prefix = strcmp(cases[i].err, "$: malformed JSON") == 0;
		bool same = prefix ? strncmp(err, cases[i].err, strlen(cases[i].err)) == 0
				   : strcmp(err, cases[i].err) == 0;
		if (rc != KAA_ERR_INVAL || !same)
			fprintf(stderr, "filter %zu: rc %d\n  got:  %s\n  want: %s\n", i, rc, err,
				cases[i].err);
		CU_ASSERT_EQUAL(rc, KAA_ERR_INVAL);
		CU_ASSERT_PTR_NULL(f);
		CU_ASSERT_TRUE(same);
	}
}

static void test_limits(void)
{
	size_t cap = KAA_FILTER_MAX_BYTES * 2;
	char *buf = malloc(cap);
	char err[KAA_JSON_ERR_SIZE];
	kaa__filter *f;
	size_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	/* Stacked quantifiers: found by fuzz_filter, glibc's regcomp took
	 * gigabytes on "^x[0-9]+++...{2,3}". */
	static const char *stacked[] = {
		"{\"cp.a\":{\"$regex\":\"^x[0-9]++++++++++++++++++++++++++++++{2,3}$\"}}",
		"{\"cp.a\":{\"$regex\":\"a{2}+\"}}",
		"{\"cp.a\":{\"$regex\":\"a*?\"}}",
	};
	for (size_t i = 0; i < sizeof(stacked) / sizeof(stacked[0]); i++) {
		CU_ASSERT_EQUAL(
			kaa__filter_compile(stacked[i], strlen(stacked[i]), &f, err, sizeof(err)),
			KAA_ERR_INVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "quantifier"));
	}
	const char *fine = "{\"cp.a\":{\"$regex\":\"^a+[+*?]{2}\\\\+(b|c)*$\"}}";
	CU_ASSERT_EQUAL(kaa__filter_compile(fine, strlen(fine), &f, err, sizeof(err)), KAA_OK);
	kaa__filter_free(f);
	/* byte limit */
	n = (size_t)snprintf(buf, cap, "{\"cp.a\":\"");
	memset(buf + n, 'x', KAA_FILTER_MAX_BYTES);
	n += KAA_FILTER_MAX_BYTES;
	memcpy(buf + n, "\"}", 3);
	CU_ASSERT_EQUAL(kaa__filter_compile(buf, strlen(buf), &f, err, sizeof(err)),
			KAA_ERR_TOO_BIG);
	/* condition count */
	n = (size_t)snprintf(buf, cap, "{\"$or\":[");
	for (int i = 0; i < KAA_FILTER_MAX_NODES; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s{\"cp.a\":%d}", i ? "," : "", i);
	snprintf(buf + n, cap - n, "]}");
	CU_ASSERT_EQUAL(kaa__filter_compile(buf, strlen(buf), &f, err, sizeof(err)), KAA_ERR_INVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "more than 1024 conditions"));
	/* number of regular expressions */
	n = (size_t)snprintf(buf, cap, "{\"$or\":[");
	for (int i = 0; i <= KAA_FILTER_MAX_REGEXES; i++)
		n += (size_t)snprintf(buf + n, cap - n, "%s{\"cp.a\":{\"$regex\":\"x%d\"}}",
				      i ? "," : "", i);
	snprintf(buf + n, cap - n, "]}");
	CU_ASSERT_EQUAL(kaa__filter_compile(buf, strlen(buf), &f, err, sizeof(err)), KAA_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(err, "$.$or[16][\"cp.a\"].$regex: more than 16 regular expressions");
	/* pattern length */
	n = (size_t)snprintf(buf, cap, "{\"cp.a\":{\"$regex\":\"");
	memset(buf + n, 'a', KAA_FILTER_MAX_REGEX + 1);
	n += KAA_FILTER_MAX_REGEX + 1;
	memcpy(buf + n, "\"}}", 4);
	CU_ASSERT_EQUAL(kaa__filter_compile(buf, strlen(buf), &f, err, sizeof(err)), KAA_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(err, "$[\"cp.a\"].$regex: pattern longer than 256 bytes");
	/* nesting depth */
	n = 0;
	for (int i = 0; i < KAA_FILTER_MAX_DEPTH; i++)
		n += (size_t)snprintf(buf + n, cap - n, "{\"$and\":[");
	CU_ASSERT_EQUAL(kaa__filter_compile(buf, n, &f, err, sizeof(err)), KAA_ERR_INVAL);
	CU_ASSERT_NSTRING_EQUAL(err, "$: nesting deeper than 32", 25);
	/* path components */
	n = (size_t)snprintf(buf, cap, "{\"cp");
	for (int i = 0; i < KAA_FILTER_MAX_PATH_PARTS; i++)
		n += (size_t)snprintf(buf + n, cap - n, ".a");
	snprintf(buf + n, cap - n, "\":1}");
	CU_ASSERT_EQUAL(kaa__filter_compile(buf, strlen(buf), &f, err, sizeof(err)), KAA_ERR_INVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "field path of more than 32 components"));
	/* bracket expressions are not mistaken for back-references or bounds */
	CU_ASSERT_EQUAL(kaa__filter_compile(S("{\"cp.a\":{\"$regex\":\"[\\\\1{]x{2,3}\"}}"), &f,
					    err, sizeof(err)),
			KAA_OK);
	kaa__filter_free(f);
	free(buf);
}

static void test_match_entry_points(void)
{
	kaa__filter *f;
	yajl_val cp, ctx;
	bool m = true;

	CU_ASSERT_EQUAL_FATAL(
		kaa__filter_compile(S("{\"cp.os\":\"linux\",\"ekh\":\"k1\"}"), &f, NULL, 0),
		KAA_OK);
	CU_ASSERT_FALSE(kaa__filter_is_empty(f));
	CU_ASSERT_EQUAL_FATAL(kaa__json_parse(S("{\"os\":\"linux\"}"), 1000, 8, &cp, NULL, 0),
			      KAA_OK);
	kaa__filter_ctx c = {.cp = cp, .sp = NULL, .ekh = "k1"};
	CU_ASSERT_TRUE(kaa__filter_eval(f, &c));
	c.ekh = "k2";
	CU_ASSERT_FALSE(kaa__filter_eval(f, &c));
	c.ekh = NULL;
	CU_ASSERT_FALSE(kaa__filter_eval(f, &c));

	CU_ASSERT_EQUAL_FATAL(kaa__json_parse(S("{\"cp\":{\"os\":\"linux\"},\"ekh\":\"k1\"}"), 1000,
					      8, &ctx, NULL, 0),
			      KAA_OK);
	CU_ASSERT_TRUE(kaa__filter_match_tree(f, ctx));
	CU_ASSERT_FALSE(kaa__filter_match_tree(f, cp)); /* no cp member in it */
	yajl_tree_free(ctx);
	yajl_tree_free(cp);

	CU_ASSERT_EQUAL(kaa__filter_match(f, S("{\"cp\":"), &m), KAA_ERR_INVAL);
	CU_ASSERT_FALSE(m);
	CU_ASSERT_EQUAL(kaa__filter_match(f, S("[1]"), &m), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__filter_match(f, S("{}"), &m), KAA_OK);
	CU_ASSERT_FALSE(m);
	kaa__filter_free(f);
	kaa__filter_free(NULL);

	CU_ASSERT_EQUAL_FATAL(kaa__filter_compile(S(" { } "), &f, NULL, 0), KAA_OK);
	CU_ASSERT_TRUE(kaa__filter_is_empty(f));
	CU_ASSERT_EQUAL(kaa__filter_match(f, S("{}"), &m), KAA_OK);
	CU_ASSERT_TRUE(m);
	kaa__filter_free(f);
}

typedef struct shared_job {
	const kaa__filter *f;
	int matches;
	int errors;
} shared_job;

static void *match_loop(void *arg)
{
	shared_job *j = arg;
	for (int i = 0; i < 2000; i++) {
		bool m = false;
		if (kaa__filter_match(j->f, S(context), &m) != KAA_OK)
			j->errors++;
		else if (m)
			j->matches++;
	}
	return NULL;
}

/* One compiled filter (with regular expressions) shared by threads. */
static void test_shared_between_threads(void)
{
	kaa__filter *f;
	pthread_t th[4];
	shared_job jobs[4];

	CU_ASSERT_EQUAL_FATAL(
		kaa__filter_compile(
			S("{\"cp.serial\":{\"$regex\":\"^ab-[0-9]+$\",\"$options\":\"i\"},"
			  "\"cp.tags\":{\"$regex\":\"^e\"},\"sp.weight\":{\"$gte\":10}}"),
			&f, NULL, 0),
		KAA_OK);
	for (int i = 0; i < 4; i++) {
		jobs[i] = (shared_job){.f = f};
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, match_loop, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(jobs[i].matches, 2000);
		CU_ASSERT_EQUAL(jobs[i].errors, 0);
	}
	kaa__filter_free(f);
}

static const kaa__cu_test tests[] = {
	{"operators and semantics", test_operators},
	{"compile errors with paths", test_compile_errors},
	{"limits", test_limits},
	{"match entry points", test_match_entry_points},
	{"shared between threads", test_shared_between_threads},
};

int main(void)
{
	return kaa__cu_run("filter", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
