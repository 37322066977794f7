#include "base/base64.h"

#include <stdint.h>

static const char STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t kaa__b64_encode(const void *in, size_t n, char *out, size_t cap, unsigned flags)
{
	const unsigned char *p = in;
	const char *abc = (flags & KAA__B64_URL) ? URL : STD;
	size_t need = (flags & KAA__B64_URL) ? n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0)
					     : KAA__B64_ENCODED_LEN(n);
	size_t o = 0;

	if (cap == 0)
		return 0;
	if (need + 1 > cap) {
		out[0] = '\0';
		return 0;
	}
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t left = n - i;
		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		if (left > 1)
			out[o++] = abc[v >> 6 & 63];
		else if (!(flags & KAA__B64_URL))
			out[o++] = '=';
		if (left > 2)
			out[o++] = abc[v & 63];
		else if (!(flags & KAA__B64_URL))
			out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int value(unsigned char c, unsigned flags)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	int url = (flags & (KAA__B64_URL | KAA__B64_LENIENT)) != 0;
	int std = !(flags & KAA__B64_URL) || (flags & KAA__B64_LENIENT);
	if (url && c == '-')
		return 62;
	if (url && c == '_')
		return 63;
	if (std && c == '+')
		return 62;
	if (std && c == '/')
		return 63;
	return -1;
}

long kaa__b64_decode(const char *in, size_t n, void *out, size_t cap, unsigned flags)
{
	unsigned char *o = out;
	size_t k = 0, chars = 0, pads = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if ((flags & KAA__B64_LENIENT) && (c == ' ' || c == '\n' || c == '\r' || c == '\t'))
			continue;
		if (c == '=') {
			pads++;
			continue;
		}
		if (pads) /* data after padding */
			return -1;
		int v = value(c, flags);
		if (v < 0)
			return -1;
		chars++;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (k == cap)
				return -1;
			o[k++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (chars % 4 == 1)
		return -1;
	if (pads && !(flags & KAA__B64_LENIENT) && (pads > 2 || (chars + pads) % 4 != 0))
		return -1;
	if (acc != 0 && !(flags & KAA__B64_LENIENT))
		return -1;
	return (long)k;
}
