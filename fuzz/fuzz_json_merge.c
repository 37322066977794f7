// fuzz-sources: lib/base/alloc.c lib/json/json_merge.c lib/base/error.c lib/base/log.c
// fuzz-pkgs: yajl libcrypto
/*
 * Configurations and merge patches come from the REST API. The input is
 * split into two JSON documents A and B at the first NUL byte (or, when
 * there is none, the first newline). Properties checked (abort on any
 * violation):
 *   - canonical form is a fixed point and parses back equal;
 *   - apply(A, diff(A, B)) == B whenever diff succeeds, and diff fails
 *     only when B holds a null object member (not expressible);
 *   - a merge patch is idempotent: apply(apply(A, B), B) == apply(A, B);
 *   - without null members in B, the weighted configuration merge of
 *     A (low) and B (high) equals apply(A, B), and its hash is the SHA-256
 *     of its text;
 *   - weights, not argument order, decide the merge.
 */
#include "base/error.h"
#include "json/json_merge.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static yajl_val parse(const char *s, size_t n)
{
	yajl_val v = NULL;
	if (kaa__json_parse(s, n, KAA_JSON_MAX_BYTES, KAA_JSON_MAX_DEPTH, &v, NULL, 0) != KAA_OK)
		return NULL;
	return v;
}

/* A null member of an object, outside arrays (what diff cannot express). */
static int has_null_member(yajl_val v)
{
	if (!YAJL_IS_OBJECT(v))
		return 0;
	for (size_t i = 0; i < v->u.object.len; i++)
		if (YAJL_IS_NULL(v->u.object.values[i]) || has_null_member(v->u.object.values[i]))
			return 1;
	return 0;
}

static int same_text(const char *a, size_t al, const char *b, size_t bl)
{
	return al == bl && memcmp(a, b, al) == 0;
}

static void check_canonical(yajl_val v)
{
	char *c1 = NULL, *c2 = NULL;
	size_t l1, l2;
	yajl_val back;

	check(kaa__json_canonical_tree(v, &c1, &l1) == KAA_OK);
	back = parse(c1, l1);
	check(back != NULL);
	check(kaa__json_equal(v, back));
	check(kaa__json_canonical_tree(back, &c2, &l2) == KAA_OK);
	check(same_text(c1, l1, c2, l2));
	yajl_tree_free(back);
	free(c1);
	free(c2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	const char *sep = memchr(in, '\0', size);
	char err[KAA_JSON_ERR_SIZE];
	char *patch = NULL, *r1 = NULL, *r2 = NULL, *m = NULL, *m2 = NULL;
	size_t plen, l1, l2, ml, ml2;
	char hash[KAA_SHA256_HEX_SIZE], hash2[KAA_SHA256_HEX_SIZE];
	yajl_val a = NULL, b = NULL, back = NULL;
	int rc;

	if (!sep)
		sep = memchr(in, '\n', size);
	if (!sep)
		sep = in + size;
	size_t alen = (size_t)(sep - in);
	const char *bs = sep < in + size ? sep + 1 : sep;
	size_t blen = (size_t)(in + size - bs);

	a = parse(in, alen);
	b = parse(bs, blen);
	if (!a || !b) {
		/* still exercise the text entry points on malformed input */
		rc = kaa__json_merge_patch_apply(in, alen, bs, blen, &r1, NULL, err, sizeof(err));
		check(rc != KAA_OK || r1 != NULL);
		free(r1);
		goto out;
	}
	check_canonical(a);
	check_canonical(b);

	/* diff round trip */
	rc = kaa__json_merge_patch_diff(in, alen, bs, blen, &patch, &plen, err, sizeof(err));
	if (rc == KAA_OK) {
		check(kaa__json_merge_patch_apply(in, alen, patch, plen, &r1, &l1, NULL, 0) ==
		      KAA_OK);
		back = parse(r1, l1);
		check(back && kaa__json_equal(back, b));
		yajl_tree_free(back);
		back = NULL;
		free(r1);
		r1 = NULL;
	} else {
		check(rc == KAA_ERR_TOO_BIG || (rc == KAA_ERR_INVAL && has_null_member(b)));
	}

	/* idempotence of apply */
	rc = kaa__json_merge_patch_apply(in, alen, bs, blen, &r1, &l1, NULL, 0);
	check(rc == KAA_OK || rc == KAA_ERR_TOO_BIG);
	if (rc != KAA_OK)
		goto out;
	check(kaa__json_merge_patch_apply(r1, l1, bs, blen, &r2, &l2, NULL, 0) == KAA_OK);
	check(same_text(r1, l1, r2, l2));

	/* configuration merge vs merge patch, and weights over order */
	kaa__config_part parts[2] = {{in, alen, -5}, {bs, blen, 7}};
	kaa__config_part swapped[2] = {{bs, blen, 7}, {in, alen, -5}};
	rc = kaa__config_merge(parts, 2, &m, &ml, hash, err, sizeof(err));
	check(rc == KAA_OK || rc == KAA_ERR_TOO_BIG);
	if (rc == KAA_OK) {
		check(kaa__json_sha256_hex(m, ml, hash2) == KAA_OK);
		check(strcmp(hash, hash2) == 0);
		if (!has_null_member(b))
			check(same_text(m, ml, r1, l1));
		check(kaa__config_merge(swapped, 2, &m2, &ml2, hash2, NULL, 0) == KAA_OK);
		check(same_text(m, ml, m2, ml2) && strcmp(hash, hash2) == 0);
	}
out:
	free(patch);
	free(r1);
	free(r2);
	free(m);
	free(m2);
	yajl_tree_free(a);
	yajl_tree_free(b);
	return 0;
}
