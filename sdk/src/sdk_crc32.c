/* CRC-32 (IEEE) of the log queue's entries (sdk_log_queue.c). */
#include "sdk_internal.h"

uint32_t kaa__sdk_crc32(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t c = 0xFFFFFFFFu;

	/* bitwise CRC-32 (IEEE); the queue checksums short entries only */
	for (size_t i = 0; i < len; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
	}
	return c ^ 0xFFFFFFFFu;
}
