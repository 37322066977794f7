/*
 * console_files.c - the web console's static files (console_files.h).
 */
#include "control/console_files.h"

#include "base/alloc.h"
#include "control/router.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PREFIX "/console/"
#define PACKAGED_DIR "/usr/share/kaa/console"

/* Vite emits a module script and stylesheets as files; nothing inline is
 * needed, so neither script nor style allows 'unsafe-inline'. */
static const char csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
			  "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
			  "object-src 'none'; base-uri 'none'; form-action 'self'; "
			  "frame-ancestors 'none'";

bool kaa__console_path(const char *path)
{
	return strcmp(path, "/console") == 0 || strncmp(path, PREFIX, strlen(PREFIX)) == 0;
}

bool kaa__console_rel_path(const char *path, char *out, size_t cap)
{
	if (strncmp(path, PREFIX, strlen(PREFIX)) != 0)
		return false;
	const char *rel = path + strlen(PREFIX);
	if (!kaa__percent_decode(rel, strlen(rel), out, cap))
		return false;
	if (strchr(out, '\\'))
		return false;
	/* Every segment must be a plain name: no "", ".", ".." or dotfile. */
	for (const char *s = out; *s;) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n == 0 || s[0] == '.')
			return false;
		s += n;
		if (*s == '/')
			s++;
		if (e && !*s)
			return false; /* trailing slash */
	}
	return true;
}

static const char *content_type(const char *rel)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{".html", "text/html; charset=utf-8"},
		{".js", "text/javascript; charset=utf-8"},
		{".mjs", "text/javascript; charset=utf-8"},
		{".css", "text/css; charset=utf-8"},
		{".json", "application/json"},
		{".map", "application/json"},
		{".svg", "image/svg+xml"},
		{".png", "image/png"},
		{".ico", "image/x-icon"},
		{".woff2", "font/woff2"},
		{".txt", "text/plain; charset=utf-8"},
	};
	const char *slash = strrchr(rel, '/'), *dot = strrchr(rel, '.');
	if (dot && (!slash || dot > slash))
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcmp(dot, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

static void security_headers(kaa__http_response *resp)
{
	kaa__http_response_add_header(resp, "Content-Security-Policy", csp);
	kaa__http_response_add_header(resp, "X-Content-Type-Options", "nosniff");
	kaa__http_response_add_header(resp, "X-Frame-Options", "DENY");
	kaa__http_response_add_header(resp, "Referrer-Policy", "no-referrer");
}

static void text(kaa__http_response *resp, int status, const char *msg)
{
	kaa__http_respond(resp, status, "text/plain; charset=utf-8", msg, strlen(msg));
	kaa__http_response_add_header(resp, "Cache-Control", "no-store");
	security_headers(resp);
}

/* Opens dir/rel if its real path stays under real_dir and is a regular
 * file: the descriptor, or -1 with errno (ENOENT for "not a file here"). */
static int open_inside(const char *real_dir, const char *rel)
{
	char path[PATH_MAX], real[PATH_MAX];
	size_t n = strlen(real_dir);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", real_dir, rel) >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (!realpath(path, real))
		return -1;
	if (strncmp(real, real_dir, n) != 0 || real[n] != '/') {
		errno = ENOENT;
		return -1;
	}
	int fd = open(real, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		errno = ENOENT;
		return -1;
	}
	return fd;
}

/* Reads the whole file into resp: 0, or -1 (answered 500). */
static int read_file(int fd, kaa__http_response *resp)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size < 0 || (size_t)st.st_size > KAA_CONSOLE_MAX_FILE) {
		text(resp, 500, "console file unreadable or too large\n");
		return -1;
	}
	size_t len = (size_t)st.st_size, got = 0;
	char *buf = kaa__xmalloc(len ? len : 1);
	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(buf);
			text(resp, 500, "console file unreadable\n");
			return -1;
		}
		got += (size_t)r;
	}
	resp->body = buf;
	resp->body_len = len;
	return 0;
}

void kaa__console_serve(const char *dir, const kaa__http_request *req, kaa__http_response *resp)
{
	char rel[1024], real_dir[PATH_MAX];
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		text(resp, 405, "only GET and HEAD are served here\n");
		kaa__http_response_add_header(resp, "Allow", "GET, HEAD");
		return;
	}
	if (strcmp(req->path, "/console") == 0) {
		text(resp, 301, "moved to /console/\n");
		kaa__http_response_add_header(resp, "Location", PREFIX);
		return;
	}
	if (!kaa__console_rel_path(req->path, rel, sizeof(rel))) {
		text(resp, 404, "no such file\n");
		return;
	}
	if (!dir || !realpath(dir, real_dir)) {
		text(resp, 404,
		     "the console is not built here: run `make console` or pass "
		     "--console-dir\n");
		return;
	}
	const char *name = rel[0] ? rel : "index.html";
	int fd = open_inside(real_dir, name);
	if (fd < 0) {
		const char *last = strrchr(name, '/');
		bool route = !strchr(last ? last + 1 : name, '.');
		if (!route || (fd = open_inside(real_dir, "index.html")) < 0) {
			text(resp, 404,
			     route ? "the console is not built here: run `make console` "
				     "or pass --console-dir\n"
				   : "no such file\n");
			return;
		}
		name = "index.html";
	}
	int rc = read_file(fd, resp);
	close(fd);
	if (rc != 0)
		return;
	resp->status = 200;
	resp->content_type = content_type(name);
	kaa__http_response_add_header(resp, "Cache-Control",
				      strncmp(name, "assets/", 7) == 0
					      ? "public, max-age=31536000, immutable"
					      : "no-cache");
	security_headers(resp);
}

static bool has_index(const char *dir)
{
	char p[PATH_MAX];
	if ((size_t)snprintf(p, sizeof(p), "%s/index.html", dir) >= sizeof(p))
		return false;
	return access(p, R_OK) == 0;
}

bool kaa__console_default_dir(char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (k > 0) {
		exe[k] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			if ((size_t)snprintf(out, cap, "%s/../console", exe) < cap &&
			    has_index(out))
				return true;
		}
	}
	snprintf(out, cap, "%s", PACKAGED_DIR);
	return has_index(out);
}
