/* Files of the SDK's state directory: mkdir -p, atomic (and optionally
 * durable) whole-file writes, bounded whole-file reads. */
#include "sdk_internal.h"

#include "base/error.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
