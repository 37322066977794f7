/*
 * base64.h - the one base64 codec (RFC 4648 sections 4 and 5), on caller
 * buffers: no allocation, no logging, so the SDK links it too. Any thread.
 */
#ifndef KAA_BASE64_H
#define KAA_BASE64_H

#include <stddef.h>

enum {
	/* encode: the URL-safe alphabet without padding; decode: the
	 * URL-safe alphabet ("-_"), padding optional */
	KAA__B64_URL = 1 << 0,
	/* decode only: either alphabet, ASCII whitespace skipped, padding
	 * optional, non-zero trailing bits tolerated (for files people edit,
	 * such as kubeconfig certificate data) */
	KAA__B64_LENIENT = 1 << 1,
};

/* Characters kaa__b64_encode writes for n bytes with padding, without the
 * NUL (an upper bound for the URL form). */
#define KAA__B64_ENCODED_LEN(n) (4 * (((n) + 2) / 3))

/* Encodes n bytes of in into out (cap bytes, room for the NUL included).
 * Returns the length written without the NUL, or 0 when cap is too small
 * (out then holds ""). */
size_t kaa__b64_encode(const void *in, size_t n, char *out, size_t cap, unsigned flags);

/* Decodes n characters of in into out (cap bytes). Returns the number of
 * bytes, or -1 on a character outside the alphabet, a length no encoding
 * has, misplaced padding, non-zero trailing bits (unless LENIENT: so that
 * every value has one encoding), or more than cap bytes. */
long kaa__b64_decode(const char *in, size_t n, void *out, size_t cap, unsigned flags);

#endif
