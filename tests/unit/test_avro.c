/* Avro schemas: parsing, error paths, document validation, defaults. */
#include "cu_main.h"
#include "json/avro_schema.h"
#include "base/error.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(x) x, strlen(x)

static kaa__avro_schema *parse_ok(const char *json)
{
	kaa__avro_schema *s = NULL;
	char err[KAA_JSON_ERR_SIZE] = "";
	int rc = kaa__avro_schema_parse(json, strlen(json), &s, err, sizeof(err));
	if (rc != KAA_OK)
		fprintf(stderr, "schema rejected: %s\n  %s\n", err, json);
	CU_ASSERT_EQUAL_FATAL(rc, KAA_OK);
	return s;
}

/* A telemetry schema exercising every type. */
static const char *telemetry =
	"{\"type\":\"record\",\"name\":\"Telemetry\",\"namespace\":\"org.kaa.demo\",\"fields\":["
	"{\"name\":\"deviceId\",\"type\":\"string\"},"
	"{\"name\":\"seq\",\"type\":\"long\"},"
	"{\"name\":\"mode\",\"type\":{\"type\":\"enum\",\"name\":\"Mode\",\"symbols\":[\"IDLE\","
	"\"ACTIVE\"]},\"default\":\"IDLE\"},"
	"{\"name\":\"label\",\"type\":[\"null\",\"string\"],\"default\":null},"
	"{\"name\":\"hash\",\"type\":{\"type\":\"fixed\",\"name\":\"Hash\",\"size\":4},"
	"\"default\":\"abcd\"},"
	"{\"name\":\"raw\",\"type\":\"bytes\",\"default\":\"\\u00ff\\u0001\"},"
	"{\"name\":\"sensors\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\","
	"\"name\":\"Sensor\",\"fields\":[{\"name\":\"name\",\"type\":\"string\"},"
	"{\"name\":\"value\",\"type\":\"int\"},{\"name\":\"unit\",\"type\":\"string\","
	"\"default\":\"C\"}]}},\"default\":[]},"
	"{\"name\":\"tags\",\"type\":{\"type\":\"map\",\"values\":\"string\"},\"default\":{}},"
	"{\"name\":\"ratio\",\"type\":\"float\",\"default\":0.5},"
	"{\"name\":\"temp\",\"type\":\"double\",\"default\":0},"
	"{\"name\":\"ok\",\"type\":\"boolean\",\"default\":true},"
	"{\"name\":\"extra\",\"type\":[\"null\",\"Sensor\"],\"default\":null},"
	"{\"name\":\"small\",\"type\":\"int\",\"default\":-2147483648}"
	"]}";

static void test_good_schemas(void)
{
	static const struct {
		const char *json, *name;
	} cases[] = {
		{"\"int\"", "int"},
		{"{\"type\":\"string\",\"logicalType\":\"uuid\"}", "string"},
		{"[\"null\",\"long\"]", "union"},
		{"{\"type\":\"array\",\"items\":{\"type\":\"map\",\"values\":\"double\"}}",
		 "array"},
		{"{\"type\":\"record\",\"name\":\"Empty\",\"fields\":[]}", "Empty"},
		/* recursion: a linked list */
		{"{\"type\":\"record\",\"name\":\"Node\",\"namespace\":\"a.b\",\"fields\":["
		 "{\"name\":\"value\",\"type\":\"int\"},{\"name\":\"next\",\"type\":[\"null\","
		 "\"Node\"],\"default\":null}]}",
		 "a.b.Node"},
		/* namespaces: inherited, overridden, dotted names, references */
		{"{\"type\":\"record\",\"name\":\"Outer\",\"namespace\":\"x\",\"fields\":["
		 "{\"name\":\"a\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]}},"
		 "{\"name\":\"b\",\"type\":{\"type\":\"fixed\",\"name\":\"y.F\",\"size\":2}},"
		 "{\"name\":\"c\",\"type\":{\"type\":\"record\",\"name\":\"In\",\"namespace\":\"\","
		 "\"fields\":[{\"name\":\"e\",\"type\":\"x.E\"}]}},"
		 "{\"name\":\"d\",\"type\":\"E\"},{\"name\":\"e\",\"type\":\"y.F\"},"
		 "{\"name\":\"f\",\"type\":\"In\"},{\"name\":\"g\",\"type\":{\"type\":\"x.E\"}}]}",
		 "x.Outer"},
		/* attributes: doc, order, aliases, unknown metadata */
		{"{\"type\":\"record\",\"name\":\"R\",\"doc\":\"d\",\"aliases\":[\"Old\"],"
		 "\"x-meta\":{\"any\":1},\"fields\":[{\"name\":\"a\",\"type\":\"int\",\"doc\":\"x\","
		 "\"order\":\"descending\",\"aliases\":[\"b\"]}]}",
		 "R"},
		/* Kaa configuration schema style: by_default */
		{"{\"type\":\"record\",\"name\":\"Cfg\",\"fields\":[{\"name\":\"msg\",\"type\":"
		 "\"string\",\"by_default\":\"hello\"}]}",
		 "Cfg"},
		/* union of two records and an enum with a default symbol */
		{"[\"null\",{\"type\":\"record\",\"name\":\"A\",\"fields\":[]},{\"type\":\"record\","
		 "\"name\":\"B\",\"fields\":[]},{\"type\":\"enum\",\"name\":\"C\",\"symbols\":[\"X\","
		 "\"Y\"],\"default\":\"Y\"}]",
		 "union"},
		/* record default holding a record; default of a float given as int */
		{"{\"type\":\"record\",\"name\":\"P\",\"fields\":[{\"name\":\"q\",\"type\":{\"type\":"
		 "\"record\",\"name\":\"Q\",\"fields\":[{\"name\":\"x\",\"type\":\"float\"},"
		 "{\"name\":\"y\",\"type\":\"int\",\"default\":1}]},\"default\":{\"x\":2}}]}",
		 "P"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kaa__avro_schema *s = parse_ok(cases[i].json);
		CU_ASSERT_STRING_EQUAL(kaa__avro_schema_name(s), cases[i].name);
		kaa__avro_schema_free(s);
	}
	kaa__avro_schema_free(parse_ok(telemetry));
	kaa__avro_schema_free(NULL);
}

static void test_bad_schemas(void)
{
	static const struct {
		const char *json, *err;
	} cases[] = {
		{"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"
		 "{\"name\":\"b\",\"type\":\"long\"},{\"name\":\"c\",\"type\":\"strin\"}]}",
		 "$.fields[2].type: unknown type \"strin\""},
		{"\"integer\"", "$: unknown type \"integer\""},
		{"42", "$: expected a type name, type object or union array, got number"},
		{"{\"name\":\"x\"}", "$: missing \"type\""},
		{"{\"type\":5}", "$.type: expected a type name string, got number"},
		{"{\"type\":\"union\"}",
		 "$.type: unknown type \"union\" (a union is written as a JSON array)"},
		{"{\"type\":\"record\",\"fields\":[]}", "$.name: missing name of record"},
		{"{\"type\":\"record\",\"name\":\"1R\",\"fields\":[]}",
		 "$.name: invalid name \"1R\" (names match [A-Za-z_][A-Za-z0-9_]*)"},
		{"{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"a..b\",\"fields\":[]}",
		 "$.namespace: invalid namespace \"a..b\""},
		{"{\"type\":\"record\",\"name\":\"int\",\"fields\":[]}",
		 "$.name: cannot redefine primitive type \"int\""},
		{"{\"type\":\"record\",\"name\":\"R\"}", "$.fields: missing fields of record R"},
		{"{\"type\":\"record\",\"name\":\"R\",\"fields\":{}}",
		 "$.fields: expected an array of fields, got object"},
		{"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\"}]}",
		 "$.fields[0].type: missing type of field \"a\""},
		{"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"type\":\"int\"}]}",
		 "$.fields[0].name: missing field name"},
		{"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a-b\",\"type\":"
		 "\"int\"}]}",
		 "$.fields[0].name: invalid field name \"a-b\" (names match "
		 "[A-Za-z_][A-Za-z0-9_]*)"},
		{"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"},"
		 "{\"name\":\"a\",\"type\":\"long\"}]}",
		 "$.fields[1].name: duplicate field name \"a\" (also fields[0])"},
		{"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\","
		 "\"order\":\"up\"}]}",
		 "$.fields[0].order: order must be \"ascending\", \"descending\" or \"ignore\""},
		{"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":{\"type\":"
		 "\"record\",\"name\":\"R\",\"fields\":[]}}]}",
		 "$.fields[0].type.name: redefinition of \"R\""},
		{"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"S\"},"
		 "{\"name\":\"b\",\"type\":{\"type\":\"record\",\"name\":\"S\",\"fields\":[]}}]}",
		 "$.fields[0].type: unknown type \"S\""},
		/* defaults checked against the type, at the path inside the default */
		{"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\","
		 "\"default\":\"x\"}]}",
		 "$.fields[0].default: expected int, got string"},
		{"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":{\"type\":"
		 "\"array\",\"items\":\"int\"},\"default\":[1,2.5]}]}",
		 "$.fields[0].default[1]: expected int, got non-integer number 2.5"},
		{"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":[\"null\","
		 "\"string\"],\"default\":\"x\"}]}",
		 "$.fields[0].default: default of a union must match its first branch (null)"},
		{"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\","
		 "\"by_default\":3000000000}]}",
		 "$.fields[0].by_default: value 3000000000 out of range for int"},
		{"{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[]}",
		 "$.symbols: enum E has no symbols"},
		{"{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\",\"A\"]}",
		 "$.symbols[2]: duplicate symbol \"A\""},
		{"{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"b c\"]}",
		 "$.symbols[1]: invalid symbol \"b c\" (symbols match [A-Za-z_][A-Za-z0-9_]*)"},
		{"{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"],\"default\":\"B\"}",
		 "$.default: default \"B\" is not a symbol of enum E"},
		{"{\"type\":\"fixed\",\"name\":\"F\",\"size\":-1}",
		 "$.size: size must be an integer from 0 to 65536"},
		{"{\"type\":\"fixed\",\"name\":\"F\"}", "$.size: missing size of fixed F"},
		{"{\"type\":\"array\"}", "$.items: missing items of array"},
		{"{\"type\":\"map\",\"values\":\"nope\"}", "$.values: unknown type \"nope\""},
		{"[]", "$: empty union"},
		{"[\"null\",[\"int\"]]", "$[1]: a union cannot directly contain a union"},
		{"[\"int\",\"string\",\"int\"]", "$[2]: union has two int branches (also [0])"},
		{"[{\"type\":\"array\",\"items\":\"int\"},{\"type\":\"array\",\"items\":\"long\"}]",
		 "$[1]: union has two array branches (also [0])"},
		{"[{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]},\"E\"]",
		 "$[1]: union has \"E\" twice (also [0])"},
		{"{\"type\":\"record\",\"name\":\"R\",\"aliases\":\"x\",\"fields\":[]}",
		 "$.aliases: expected an array of names, got string"},
		{"{\"type\":\"record\",\"name\":\"R\",\"doc\":1,\"fields\":[]}",
		 "$.doc: expected a string, got number"},
		{"{\"type\":\"record\",\"name\":\"R\",\"fields\":[],\"fields\":[]}",
		 "$: duplicate key \"fields\""},
		{"{\"type\":", "$: malformed JSON"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kaa__avro_schema *s = (kaa__avro_schema *)1;
		char err[KAA_JSON_ERR_SIZE] = "";
		int rc = kaa__avro_schema_parse(S(cases[i].json), &s, err, sizeof(err));
		bool prefix = strcmp(cases[i].err, "$: malformed JSON") == 0;
		bool same = prefix ? strncmp(err, cases[i].err, strlen(cases[i].err)) == 0
				   : strcmp(err, cases[i].err) == 0;
		if (rc != KAA_ERR_INVAL || !same)
			fprintf(stderr, "bad schema %zu: rc %d\n  got:  %s\n  want: %s\n", i, rc,
				err, cases[i].err);
		CU_ASSERT_EQUAL(rc, KAA_ERR_INVAL);
		CU_ASSERT_PTR_NULL(s);
		CU_ASSERT_TRUE(same);
	}
}

static void test_schema_limits(void)
{
	kaa__avro_schema *s;
	char err[KAA_JSON_ERR_SIZE];
	size_t cap = KAA_AVRO_MAX_SCHEMA_BYTES + 64;
	char *big = malloc(cap);
	size_t n = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	/* over the byte limit */
	n = (size_t)snprintf(big, cap, "{\"type\":\"string\",\"doc\":\"");
	memset(big + n, 'x', KAA_AVRO_MAX_SCHEMA_BYTES);
	n += KAA_AVRO_MAX_SCHEMA_BYTES;
	memcpy(big + n, "\"}", 3);
	CU_ASSERT_EQUAL(kaa__avro_schema_parse(big, strlen(big), &s, err, sizeof(err)),
			KAA_ERR_TOO_BIG);
	/* too many fields */
	n = (size_t)snprintf(big, cap, "{\"type\":\"record\",\"name\":\"R\",\"fields\":[");
	for (int i = 0; i <= KAA_AVRO_MAX_FIELDS; i++)
		n += (size_t)snprintf(big + n, cap - n, "%s{\"name\":\"f%d\",\"type\":\"int\"}",
				      i ? "," : "", i);
	snprintf(big + n, cap - n, "]}");
	CU_ASSERT_EQUAL(kaa__avro_schema_parse(big, strlen(big), &s, err, sizeof(err)),
			KAA_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(err, "$.fields: more than 1024 fields");
	/* too many type definitions: 1024 fields of array<map<int>> */
	n = (size_t)snprintf(big, cap, "{\"type\":\"record\",\"name\":\"R\",\"fields\":[");
	for (int i = 0; i < KAA_AVRO_MAX_FIELDS; i++)
		n += (size_t)snprintf(big + n, cap - n,
				      "%s{\"name\":\"f%d\",\"type\":{\"type\":\"array\",\"items\":"
				      "{\"type\":\"map\",\"values\":\"int\"}}}",
				      i ? "," : "", i);
	snprintf(big + n, cap - n, "]}");
	CU_ASSERT_EQUAL(kaa__avro_schema_parse(big, strlen(big), &s, err, sizeof(err)),
			KAA_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(err, "$.fields[1023].type.items: more than 2048 type definitions");
	free(big);
}

static void validate_case(const kaa__avro_schema *s, const char *doc, const char *want)
{
	char err[KAA_JSON_ERR_SIZE] = "";
	int rc = kaa__avro_validate(s, S(doc), err, sizeof(err));
	if (!want) {
		if (rc != KAA_OK)
			fprintf(stderr, "unexpected mismatch: %s\n  doc: %s\n", err, doc);
		CU_ASSERT_EQUAL(rc, KAA_OK);
		return;
	}
	if (rc != KAA_ERR_INVAL || strcmp(err, want) != 0)
		fprintf(stderr, "doc %s\n  rc %d got:  %s\n  want: %s\n", doc, rc, err, want);
	CU_ASSERT_EQUAL(rc, KAA_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(err, want);
}

static void test_validate(void)
{
	kaa__avro_schema *s = parse_ok(telemetry);
	static const struct {
		const char *doc, *err; /* err NULL: valid */
	} cases[] = {
		{"{\"deviceId\":\"d1\",\"seq\":1}", NULL},
		{"{\"deviceId\":\"d1\",\"seq\":-9223372036854775808,\"mode\":\"ACTIVE\",\"label\":"
		 "\"x\",\"hash\":\"\\u00ff\\u00fe12\",\"raw\":\"\",\"sensors\":[{\"name\":\"t\","
		 "\"value\":2147483647,\"unit\":\"F\"},{\"name\":\"h\",\"value\":-1}],\"tags\":{"
		 "\"a\":\"b\"},\"ratio\":1e38,\"temp\":-1.5e300,\"ok\":false,\"extra\":{\"name\":"
		 "\"x\",\"value\":0},\"small\":0}",
		 NULL},
		{"{\"deviceId\":\"d1\",\"seq\":1,\"label\":null,\"extra\":null,\"ratio\":3}", NULL},
		{"{\"deviceId\":\"d1\",\"seq\":1,\"sensors\":[{\"name\":\"a\",\"value\":1},{\"name\":"
		 "\"b\",\"value\":2},{\"name\":\"c\",\"value\":3},{\"name\":\"d\",\"value\":\"4\"}]}",
		 "$.sensors[3].value: expected int, got string"},
		{"{\"seq\":1}", "$.deviceId: missing required field"},
		{"{\"deviceId\":\"d\"}", "$.seq: missing required field"},
		{"{\"deviceId\":\"d\",\"seq\":1,\"sensors\":[{\"value\":1}]}",
		 "$.sensors[0].name: missing required field"},
		{"{\"deviceId\":\"d\",\"seq\":1,\"colour\":1}",
		 "$.colour: unknown field (record org.kaa.demo.Telemetry has no field \"colour\")"},
		{"{\"deviceId\":7,\"seq\":1}", "$.deviceId: expected string, got number"},
		{"{\"deviceId\":\"d\",\"seq\":9223372036854775808}",
		 "$.seq: value 9223372036854775808 out of range for long"},
		{"{\"deviceId\":\"d\",\"seq\":1.5}",
		 "$.seq: expected long, got non-integer number 1.5"},
		{"{\"deviceId\":\"d\",\"seq\":1e3}",
		 "$.seq: expected long, got non-integer number 1e3"},
		{"{\"deviceId\":\"d\",\"seq\":1,\"small\":2147483648}",
		 "$.small: value 2147483648 out of range for int"},
		{"{\"deviceId\":\"d\",\"seq\":1,\"ratio\":1e39}",
		 "$.ratio: value 1e39 out of range for float"},
		{"{\"deviceId\":\"d\",\"seq\":1,\"ok\":\"true\"}",
		 "$.ok: expected boolean, got string"},
		{"{\"deviceId\":\"d\",\"seq\":1,\"mode\":\"SLEEP\"}",
		 "$.mode: \"SLEEP\" is not a symbol of enum org.kaa.demo.Mode"},
		{"{\"deviceId\":\"d\",\"seq\":1,\"mode\":1}",
		 "$.mode: expected enum org.kaa.demo.Mode, got number"},
		{"{\"deviceId\":\"d\",\"seq\":1,\"hash\":\"abc\"}",
		 "$.hash: expected 4 bytes for fixed org.kaa.demo.Hash, got 3"},
		{"{\"deviceId\":\"d\",\"seq\":1,\"raw\":\"\\u0100\"}",
		 "$.raw: bytes value has a character above U+00FF (each character is one byte)"},
		{"{\"deviceId\":\"d\",\"seq\":1,\"label\":5}",
		 "$.label: expected one of [null, string], got number"},
		/* Avro's tagged union encoding is not ours */
		{"{\"deviceId\":\"d\",\"seq\":1,\"label\":{\"string\":\"x\"}}",
		 "$.label: expected one of [null, string], got object"},
		/* one branch of the value's kind: its own, deeper error */
		{"{\"deviceId\":\"d\",\"seq\":1,\"extra\":{\"name\":\"x\",\"value\":\"v\"}}",
		 "$.extra.value: expected int, got string"},
		{"{\"deviceId\":\"d\",\"seq\":1,\"tags\":{\"ok\":\"1\",\"a.b\":2}}",
		 "$.tags[\"a.b\"]: expected string, got number"},
		{"{\"deviceId\":\"d\",\"seq\":1,\"sensors\":{}}",
		 "$.sensors: expected array, got object"},
		{"[]", "$: expected record org.kaa.demo.Telemetry, got array"},
		{"{\"deviceId\":\"d\",\"seq\":1,\"deviceId\":\"e\"}",
		 "$: duplicate key \"deviceId\""},
		/* first mismatch in document order */
		{"{\"ok\":1,\"deviceId\":2}", "$.ok: expected boolean, got number"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		validate_case(s, cases[i].doc, cases[i].err);

	/* malformed and oversized documents */
	char err[KAA_JSON_ERR_SIZE];
	CU_ASSERT_EQUAL(kaa__avro_validate(s, S("{\"deviceId\":"), err, sizeof(err)),
			KAA_ERR_INVAL);
	CU_ASSERT_NSTRING_EQUAL(err, "$: malformed JSON", 17);
	char *big = malloc(KAA_AVRO_MAX_DOC_BYTES + 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, ' ', KAA_AVRO_MAX_DOC_BYTES + 1);
	big[0] = '1';
	CU_ASSERT_EQUAL(kaa__avro_validate(s, big, KAA_AVRO_MAX_DOC_BYTES + 1, err, sizeof(err)),
			KAA_ERR_TOO_BIG);
	free(big);
	kaa__avro_schema_free(s);
}

static void test_validate_recursive(void)
{
	kaa__avro_schema *s =
		parse_ok("{\"type\":\"record\",\"name\":\"Node\",\"fields\":[{\"name\":\"v\","
			 "\"type\":\"int\"},{\"name\":\"next\",\"type\":[\"null\",\"Node\"],"
			 "\"default\":null}]}");
	validate_case(s, "{\"v\":1,\"next\":{\"v\":2,\"next\":{\"v\":3}}}", NULL);
	validate_case(s, "{\"v\":1,\"next\":{\"v\":2,\"next\":{\"v\":\"3\"}}}",
		      "$.next.next.v: expected int, got string");
	validate_case(s, "{\"v\":1,\"next\":5}",
		      "$.next: expected one of [null, Node], got number");
	kaa__avro_schema_free(s);

	/* two record branches that both recurse: trial matching is bounded */
	s = parse_ok(
		"{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"x\",\"type\":"
		"[\"null\",\"A\",{\"type\":\"record\",\"name\":\"B\",\"fields\":[{\"name\":"
		"\"x\",\"type\":[\"null\",\"A\",\"B\"]},{\"name\":\"y\",\"type\":\"int\"}]}]}]}");
	char doc[2048];
	size_t n = 0;
	for (int i = 0; i < 60; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n, "{\"x\":");
	n += (size_t)snprintf(doc + n, sizeof(doc) - n, "5");
	for (int i = 0; i < 60; i++)
		n += (size_t)snprintf(doc + n, sizeof(doc) - n, "}");
	char err[KAA_JSON_ERR_SIZE];
	CU_ASSERT_EQUAL(kaa__avro_validate(s, doc, n, err, sizeof(err)), KAA_ERR_INVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "document too complex to validate"));
	kaa__avro_schema_free(s);
}

static void test_default_document(void)
{
	kaa__avro_schema *s = parse_ok(
		"{\"type\":\"record\",\"name\":\"Config\",\"fields\":["
		"{\"name\":\"interval\",\"type\":\"int\",\"default\":30},"
		"{\"name\":\"greeting\",\"type\":\"string\",\"by_default\":\"hi\"},"
		"{\"name\":\"level\",\"type\":{\"type\":\"enum\",\"name\":\"L\",\"symbols\":"
		"[\"LOW\",\"HIGH\"],\"default\":\"HIGH\"}},"
		"{\"name\":\"servers\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
		"{\"name\":\"limits\",\"type\":{\"type\":\"map\",\"values\":\"long\"}},"
		"{\"name\":\"proxy\",\"type\":[\"null\",\"string\"]},"
		"{\"name\":\"net\",\"type\":{\"type\":\"record\",\"name\":\"Net\",\"fields\":["
		"{\"name\":\"mtu\",\"type\":\"int\",\"default\":1500},{\"name\":\"dhcp\","
		"\"type\":\"boolean\",\"default\":true}]}},"
		"{\"name\":\"alt\",\"type\":\"Net\",\"default\":{\"mtu\":9000}}"
		"]}");
	char *out = NULL, err[KAA_JSON_ERR_SIZE];
	size_t len = 0;

	CU_ASSERT_EQUAL_FATAL(kaa__avro_default_document(s, &out, &len, err, sizeof(err)), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out, "{\"alt\":{\"dhcp\":true,\"mtu\":9000},\"greeting\":\"hi\","
				    "\"interval\":30,\"level\":\"HIGH\",\"limits\":{},"
				    "\"net\":{\"dhcp\":true,\"mtu\":1500},\"proxy\":null,"
				    "\"servers\":[]}");
	CU_ASSERT_EQUAL(len, strlen(out));
	CU_ASSERT_EQUAL(kaa__avro_validate(s, out, len, err, sizeof(err)), KAA_OK);
	free(out);

	/* completion keeps given values and fills the rest */
	CU_ASSERT_EQUAL_FATAL(kaa__avro_complete(s,
						 S("{\"interval\":5,\"net\":{\"mtu\":1400},"
						   "\"limits\":{\"b\":2,\"a\":1},\"proxy\":\"p\","
						   "\"servers\":[],\"level\":\"LOW\"}"),
						 &out, NULL, err, sizeof(err)),
			      KAA_OK);
	CU_ASSERT_STRING_EQUAL(out, "{\"alt\":{\"dhcp\":true,\"mtu\":9000},\"greeting\":\"hi\","
				    "\"interval\":5,\"level\":\"LOW\",\"limits\":{\"a\":1,\"b\":2},"
				    "\"net\":{\"dhcp\":true,\"mtu\":1400},\"proxy\":\"p\","
				    "\"servers\":[]}");
	free(out);
	CU_ASSERT_EQUAL(
		kaa__avro_complete(s, S("{\"interval\":\"5\"}"), &out, NULL, err, sizeof(err)),
		KAA_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(err, "$.interval: expected int, got string");
	CU_ASSERT_PTR_NULL(out);
	kaa__avro_schema_free(s);

	/* no default derivable */
	s = parse_ok("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":{"
		     "\"type\":\"record\",\"name\":\"In\",\"fields\":[{\"name\":\"id\",\"type\":"
		     "\"string\"}]}}]}");
	CU_ASSERT_EQUAL(kaa__avro_default_document(s, &out, NULL, err, sizeof(err)), KAA_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(err, "$.a.id: no default value (a field of type string needs one)");
	kaa__avro_schema_free(s);

	/* a recursive record without defaults has no finite default */
	s = parse_ok(
		"{\"type\":\"record\",\"name\":\"Loop\",\"fields\":[{\"name\":\"me\",\"type\":"
		"{\"type\":\"map\",\"values\":\"Loop\"}},{\"name\":\"next\",\"type\":[\"Loop\","
		"\"null\"]}]}");
	CU_ASSERT_EQUAL(kaa__avro_default_document(s, &out, NULL, err, sizeof(err)), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out, "{\"me\":{},\"next\":null}");
	free(out);
	kaa__avro_schema_free(s);
	s = parse_ok("{\"type\":\"record\",\"name\":\"Loop\",\"fields\":[{\"name\":\"next\","
		     "\"type\":\"Loop\"}]}");
	CU_ASSERT_EQUAL(kaa__avro_default_document(s, &out, NULL, err, sizeof(err)), KAA_ERR_INVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "recursive record without defaults"));
	kaa__avro_schema_free(s);

	/* exponential default expansion stops at the size limit */
	char schema[8192];
	size_t n = (size_t)snprintf(schema, sizeof(schema),
				    "{\"type\":\"record\",\"name\":\"R0\",\"fields\":[]}");
	for (int i = 1; i <= 20; i++) {
		char prev[8192];
		memcpy(prev, schema, n + 1);
		n = (size_t)snprintf(
			schema, sizeof(schema),
			"{\"type\":\"record\",\"name\":\"R%d\",\"fields\":[{\"name\":\"a\","
			"\"type\":%s},{\"name\":\"b\",\"type\":\"R%d\"}]}",
			i, prev, i - 1);
	}
	s = parse_ok(schema);
	CU_ASSERT_EQUAL(kaa__avro_default_document(s, &out, NULL, err, sizeof(err)),
			KAA_ERR_TOO_BIG);
	CU_ASSERT_PTR_NULL(out);
	kaa__avro_schema_free(s);
}

static const kaa__cu_test tests[] = {
	{"good schemas", test_good_schemas},
	{"bad schemas with paths", test_bad_schemas},
	{"schema limits", test_schema_limits},
	{"document validation", test_validate},
	{"recursive types", test_validate_recursive},
	{"default document and completion", test_default_document},
};

int main(void)
{
	return kaa__cu_run("avro", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
