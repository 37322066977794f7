/*
 * avro_schema.h - Avro schemas as the original Kaa platform uses them
 * (profile, configuration, notification, log and event schemas), and
 * validation of JSON data payloads against them.
 *
 * Schemas (Avro 1.x specification, JSON form):
 *   - primitives null boolean int long float double bytes string, written
 *     "int" or {"type":"int", ...} (extra attributes such as logicalType
 *     are accepted and ignored);
 *   - record (also "error"), enum, array, map, fixed, unions ([...]);
 *   - named types: "name" (a dotted name is a full name), "namespace"
 *     (inherited by nested definitions; "" is the null namespace); names
 *     match [A-Za-z_][A-Za-z0-9_]*, a primitive name cannot be defined,
 *     each full name is defined once; a string that is not a primitive
 *     names a type defined earlier (or the record being defined, so
 *     recursive types work), resolved in the enclosing namespace first,
 *     then as written;
 *   - record fields: unique "name", "type", optional "default", "doc",
 *     "order" (ascending|descending|ignore), "aliases"; Kaa's
 *     "by_default" attribute (configuration schemas of the original
 *     platform) is taken as the default when "default" is absent;
 *   - enums: 1..KAA_AVRO_MAX_SYMBOLS unique symbols, optional "default"
 *     that must be one of them; fixed: "size" 0..KAA_AVRO_MAX_FIXED_SIZE;
 *   - unions: 1..KAA_AVRO_MAX_BRANCHES branches, no union directly inside
 *     a union, at most one branch of each unnamed type (primitive kind,
 *     array, map) and of each named type;
 *   - every default is checked against its field's type, using the same
 *     JSON encoding as documents (below); a union field's default must
 *     match the union's FIRST branch, as the Avro specification says.
 *   Unknown attributes are allowed (Avro metadata). A schema error reads
 *   like  $.fields[2].type: unknown type "strin"  (see json_merge.h for
 *   the path syntax; schema paths address the schema document).
 *
 * Document JSON encoding ("plain JSON", used by the REST API, devices and
 * schema defaults alike):
 *   null -> null; boolean -> true/false;
 *   int -> an integer literal (no fraction or exponent) in int32 range;
 *   long -> an integer literal in int64 range;
 *   float, double -> any JSON number (float: magnitude at most FLT_MAX);
 *   string -> a string; enum -> a string naming one of the symbols;
 *   bytes, fixed -> a string whose characters are U+0000..U+00FF, one
 *     byte each (Avro's own JSON convention); fixed needs exactly "size"
 *     characters; note \u0000 is rejected by the JSON parser, so a byte 0
 *     cannot be written;
 *   array -> an array; map -> an object (any keys);
 *   record -> an object with only the record's field names; a field may
 *     be left out only when it has a default;
 *   union -> the bare value of one branch; the first branch (in schema
 *     order) that accepts the value is the one taken. Avro's tagged union
 *     form {"string":"x"} is NOT accepted as such (it is an object, so
 *     only a map or record branch can take it): one encoding, no
 *     ambiguity with maps, the same form Avro uses for defaults.
 *   A mismatch reports the path of the first offending value in document
 *   order, e.g.  $.sensors[3].value: expected int, got string, or, for a
 *   missing field, the path of the field:  $.sensors[3].unit: missing
 *   required field. When no union branch matches and exactly one branch
 *   has the value's JSON kind, the error is that branch's (deeper) one,
 *   otherwise "expected one of [null, string], got number".
 *
 * Limits (inputs over a byte limit give KAA_ERR_TOO_BIG, all others
 * KAA_ERR_INVAL with a message): schema text KAA_AVRO_MAX_SCHEMA_BYTES,
 * nesting KAA_AVRO_MAX_SCHEMA_DEPTH, KAA_AVRO_MAX_TYPES complex type
 * definitions (records, enums, fixed, arrays, maps, unions; references do
 * not count), KAA_AVRO_MAX_FIELDS per record, KAA_AVRO_MAX_NAME bytes per
 * full name; documents KAA_AVRO_MAX_DOC_BYTES and KAA_AVRO_MAX_DOC_DEPTH;
 * one validation does at most KAA_AVRO_MAX_STEPS value checks (unions of
 * similar records could otherwise make trial matching exponential).
 *
 * Ownership: a kaa__avro_schema is immutable after parse and owned by the
 * caller; output strings are malloc'd and owned by the caller.
 * Thread-safety: pure functions; one schema may be used by any number of
 * threads at once.
 */
#ifndef KAA_AVRO_SCHEMA_H
#define KAA_AVRO_SCHEMA_H

#include <stddef.h>
#include <yajl/yajl_tree.h>

#include "json/json_merge.h"

#define KAA_AVRO_MAX_SCHEMA_BYTES (256 * 1024)
#define KAA_AVRO_MAX_SCHEMA_DEPTH 64
#define KAA_AVRO_MAX_TYPES 2048
#define KAA_AVRO_MAX_FIELDS 1024
#define KAA_AVRO_MAX_SYMBOLS 1024
#define KAA_AVRO_MAX_BRANCHES 64
#define KAA_AVRO_MAX_NAME 255
#define KAA_AVRO_MAX_FIXED_SIZE 65536
#define KAA_AVRO_MAX_DOC_BYTES KAA_JSON_MAX_BYTES
#define KAA_AVRO_MAX_DOC_DEPTH KAA_JSON_MAX_DEPTH
#define KAA_AVRO_MAX_STEPS 4000000

typedef struct kaa__avro_schema kaa__avro_schema;

/* Parses and checks the schema json[0..len) (no NUL needed). On success
 * *out is a new schema (free with kaa__avro_schema_free). Errors:
 * KAA_ERR_INVAL (malformed JSON or invalid schema; err says where and
 * why), KAA_ERR_TOO_BIG (over KAA_AVRO_MAX_SCHEMA_BYTES).
 * *out is NULL on error. */
int kaa__avro_schema_parse(const char *json, size_t len, kaa__avro_schema **out, char *err,
			   size_t errlen);
/* Accepts NULL. */
void kaa__avro_schema_free(kaa__avro_schema *s);

/* The root type's full name for a named type ("org.kaa.Config"), else
 * its kind ("int", "array", "map", "union"). Valid while s lives. */
const char *kaa__avro_schema_name(const kaa__avro_schema *s);

/* Validates the document json[0..len) against s. KAA_OK when it matches;
 * KAA_ERR_INVAL with "<path>: <reason>" in path_err for the first
 * mismatch, for malformed JSON, too deep nesting or the step budget;
 * KAA_ERR_TOO_BIG over KAA_AVRO_MAX_DOC_BYTES. */
int kaa__avro_validate(const kaa__avro_schema *s, const char *json, size_t len, char *path_err,
		       size_t errlen);
/* The same on a tree from kaa__json_parse (never allocates). */
int kaa__avro_validate_tree(const kaa__avro_schema *s, yajl_val doc, char *path_err, size_t errlen);

/* The default document of s in canonical JSON (json_merge.h): a device's
 * default configuration. Per type, when no value or default is given:
 * record -> an object with every field (its default, completed the same
 * way, else derived from its type); union -> null when null is a branch,
 * else derived from the first branch; array -> []; map -> {}; enum -> its
 * "default" symbol if any; any other type -> error "<path>: no default
 * value" where path is the document path of the field. The result always
 * validates against s. Errors: KAA_ERR_INVAL (no default derivable, or a
 * recursive record without defaults), KAA_ERR_TOO_BIG (result over
 * KAA_AVRO_MAX_DOC_BYTES). */
int kaa__avro_default_document(const kaa__avro_schema *s, char **out, size_t *outlen, char *err,
			       size_t errlen);
/* Validates json[0..len) against s, then returns it in canonical JSON with
 * every left-out field filled in as kaa__avro_default_document does.
 * Errors of kaa__avro_validate and kaa__avro_default_document. */
int kaa__avro_complete(const kaa__avro_schema *s, const char *json, size_t len, char **out,
		       size_t *outlen, char *err, size_t errlen);

#endif
