/* Small helpers of the SDK: checksums, randomness, time, backoff, files. */
#include "sdk_internal.h"

#include "base/error.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

uint64_t kaa__sdk_random64(void)
{
	uint64_t v = 0;
	struct timespec ts;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
		return v;
	/* no entropy yet (early boot): a clock and address mix, splitmix64 */
	clock_gettime(CLOCK_REALTIME, &ts);
	v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)&v;
	v += 0x9E3779B97F4A7C15ull;
	v = (v ^ (v >> 30)) * 0xBF58476D1CE4E5B9ull;
	v = (v ^ (v >> 27)) * 0x94D049BB133111EBull;
	return v ^ (v >> 31);
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x2545F4914F6CDD1Dull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

uint64_t kaa__sdk_rand_below(uint64_t *rng, uint64_t n)
{
	return n ? xorshift(rng) % n : 0;
}

void kaa__sdk_backoff_init(kaa__sdk_backoff *b, uint32_t initial_ms, uint32_t max_ms)
{
	b->initial_ms = initial_ms ? initial_ms : 1;
	b->max_ms = max_ms < b->initial_ms ? b->initial_ms : max_ms;
	b->base_ms = b->initial_ms;
	b->rng = kaa__sdk_random64() | 1;
}

uint32_t kaa__sdk_backoff_next(kaa__sdk_backoff *b)
{
	uint32_t base = b->base_ms;
	uint32_t half = base / 2;
	uint32_t d = half + (uint32_t)kaa__sdk_rand_below(&b->rng, (uint64_t)(base - half) + 1);

	b->base_ms = base > b->max_ms / 2 ? b->max_ms : base * 2;
	return d;
}

void kaa__sdk_backoff_reset(kaa__sdk_backoff *b)
{
	b->base_ms = b->initial_ms;
}

int kaa__sdk_mkdirs(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return KAA_ERR_INVAL;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char c = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return KAA_ERR_IO;
		buf[i] = c;
	}
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return KAA_ERR_IO;
	return KAA_OK;
}

static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 1;
	int fd, rc = KAA_OK;

	if (n >= sizeof(dir))
		return KAA_ERR_INVAL;
	if (slash) {
		memcpy(dir, path, n);
		dir[n ? n : 1] = '\0';
		if (n == 0)
			dir[0] = '/';
	} else {
		strcpy(dir, ".");
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return KAA_ERR_IO;
	if (fsync(fd) != 0)
		rc = KAA_ERR_IO;
	close(fd);
	return rc;
}

int kaa__sdk_write_file(const char *path, const void *data, size_t len, int mode, bool durable)
{
	char tmp[PATH_MAX];
	const char *p = data;
	int fd, rc = KAA_OK;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return KAA_ERR_INVAL;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return KAA_ERR_IO;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = KAA_ERR_IO;
			goto out;
		}
		p += w;
		len -= (size_t)w;
	}
	if (durable && fsync(fd) != 0)
		rc = KAA_ERR_IO;
out:
	if (close(fd) != 0 && rc == KAA_OK)
		rc = KAA_ERR_IO;
	if (rc == KAA_OK && rename(tmp, path) != 0)
		rc = KAA_ERR_IO;
	if (rc == KAA_OK && durable)
		rc = fsync_dir_of(path);
	else if (rc != KAA_OK)
		unlink(tmp);
	return rc;
}

int kaa__sdk_read_file(const char *path, size_t max, char **out, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	int rc = KAA_OK;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*out = NULL;
	if (fd < 0)
		return errno == ENOENT ? KAA_ERR_NOTFOUND : KAA_ERR_IO;
	buf = malloc(max + 2);
	if (!buf) {
		rc = KAA_ERR_NOMEM;
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = KAA_ERR_IO;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			rc = KAA_ERR_TOO_BIG;
			goto out;
		}
	}
	buf[n] = '\0';
	*out = buf;
	buf = NULL;
	if (len)
		*len = n;
out:
	free(buf);
	close(fd);
	return rc;
}
