/* The bootstrap client: one bounded HTTP or HTTPS GET and the weighted
 * choice of an operations node. */
#include "sdk_internal.h"

#include "base/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The bootstrap answer is a short JSON list; anything longer is refused. */
#define BOOT_MAX_ANSWER (64 * 1024)

int kaa__sdk_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon, *hs = s;
	size_t hl;
	char *end;
	long p;

	if (!s || !*s)
		return KAA_ERR_INVAL;
	if (*s == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return KAA_ERR_INVAL;
		hs = s + 1;
		hl = (size_t)(rb - hs);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return KAA_ERR_INVAL;
		hl = (size_t)(colon - s);
		if (memchr(s, ':', hl))
			return KAA_ERR_INVAL; /* an IPv6 address needs brackets */
	}
	if (hl == 0 || hl >= hostlen)
		return KAA_ERR_INVAL;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || p < 1 || p > 65535)
		return KAA_ERR_INVAL;
	memcpy(host, hs, hl);
	host[hl] = '\0';
	*port = (uint16_t)p;
	return KAA_OK;
}

int kaa__sdk_node_from_url(const char *url, kaa__node_addr *a)
{
	kaa__device_url u;
	memset(a, 0, sizeof(*a));
	if (kaa__device_url_parse(url, KAA__URL_WS, &u) != KAA_OK)
		return KAA_ERR_INVAL;
	strcpy(a->host, u.host);
	a->port = u.port;
	a->weight = 1;
	a->tls = u.tls;
	a->from_url = true;
	strcpy(a->path, u.path);
	return KAA_OK;
}

int kaa__sdk_bootstrap_parse(const char *body, size_t len, kaa__node_addr *nodes, size_t max,
			     size_t *n)
{
	kaa__sj *root = NULL;
	const kaa__sj *list;
	int rc;

	*n = 0;
	rc = kaa__sj_parse(body, len, BOOT_MAX_ANSWER, 8, &root);
	if (rc != KAA_OK)
		return rc;
	list = kaa__sj_get(root, "nodes");
	if (!list || list->type != KAA__SJ_ARRAY) {
		rc = KAA_ERR_INVAL;
		goto out;
	}
	for (size_t i = 0; i < list->n && *n < max; i++) {
		const kaa__sj *h = kaa__sj_get(list->vals[i], "host");
		const kaa__sj *p = kaa__sj_get(list->vals[i], "port");
		const kaa__sj *w = kaa__sj_get(list->vals[i], "weight");
		const kaa__sj *t = kaa__sj_get(list->vals[i], "tls");
		const kaa__sj *u = kaa__sj_get(list->vals[i], "url");
		kaa__node_addr *a = &nodes[*n];
		double wv = w && w->type == KAA__SJ_NUMBER ? strtod(w->str, NULL) : 1;
		if (u && u->type == KAA__SJ_STRING && kaa__sdk_node_from_url(u->str, a) == KAA_OK) {
			/* the advertised URL: what this node is reachable as */
		} else {
			if (!h || h->type != KAA__SJ_STRING || !*h->str ||
			    strlen(h->str) >= KAA__HOST_MAX || !p || p->type != KAA__SJ_NUMBER)
				continue;
			double pv = strtod(p->str, NULL);
			if (pv < 1 || pv > 65535)
				continue;
			memset(a, 0, sizeof(*a));
			strcpy(a->host, h->str);
			a->port = (uint16_t)pv;
			a->tls = t && t->type == KAA__SJ_TRUE;
			strcpy(a->path, "/");
		}
		a->weight = wv < 1 ? 1 : wv > 1e6 ? 1000000u : (uint32_t)wv;
		(*n)++;
	}
out:
	kaa__sj_free(root);
	return rc;
}

size_t kaa__sdk_pick_weighted(const kaa__node_addr *nodes, size_t n, size_t avoid, uint64_t *rng)
{
	uint64_t total = 0, r;

	if (n <= 1)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (i != avoid)
			total += nodes[i].weight ? nodes[i].weight : 1;
	r = kaa__sdk_rand_below(rng, total);
	for (size_t i = 0; i < n; i++) {
		uint64_t w;
		if (i == avoid)
			continue;
		w = nodes[i].weight ? nodes[i].weight : 1;
		if (r < w)
			return i;
		r -= w;
	}
	return avoid == 0 ? 1 : 0; /* unreachable */
}

static int connect_deadline(const char *host, uint16_t port, int64_t deadline)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	char ps[8];
	int fd = -1, rc = KAA_ERR_UNAVAILABLE;

	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(host, ps, &hints, &res) != 0)
		return KAA_ERR_UNAVAILABLE;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			struct pollfd pf = {.fd = fd, .events = POLLOUT};
			int64_t left = deadline - kaa__now_ms();
			int err = 0;
			socklen_t el = sizeof(err);
			if (left > 0 && poll(&pf, 1, (int)left) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0)
				break;
			if (left <= 0)
				rc = KAA_ERR_TIMEOUT;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : rc;
}

/* True once the headers and Content-Length bytes of body are in buf (a
 * server that keeps the connection open is not waited for). */
static bool answer_complete(const char *buf, size_t got)
{
	const char *end = strstr(buf, "\r\n\r\n");
	const char *cl;
	long n;

	if (!end)
		return false;
	cl = strcasestr(buf, "\r\ncontent-length:");
	if (!cl || cl > end)
		return false;
	n = strtol(cl + 17, NULL, 10);
	return n >= 0 && got >= (size_t)(end + 4 - buf) + (size_t)n;
}

static void url_escape(const char *in, char *out, size_t outlen)
{
	static const char hexd[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *c = (const unsigned char *)in; *c && o + 4 < outlen; c++) {
		if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		    (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.' || *c == '~') {
			out[o++] = (char)*c;
		} else {
			out[o++] = '%';
			out[o++] = hexd[*c >> 4];
			out[o++] = hexd[*c & 15];
		}
	}
	out[o] = '\0';
}

/* The connection to a bootstrap server: a socket with a deadline, and TLS
 * on it for https. */
typedef struct boot_io {
	int fd;
	int64_t deadline;
	SSL_CTX *ctx;
	SSL *ssl;
} boot_io;

static int io_wait(boot_io *io, short events)
{
	struct pollfd pf = {.fd = io->fd, .events = events};
	int64_t left = io->deadline - kaa__now_ms();
	if (left <= 0)
		return KAA_ERR_TIMEOUT;
	int r = poll(&pf, 1, (int)left);
	if (r < 0 && errno == EINTR)
		return KAA_OK;
	return r > 0 ? KAA_OK : KAA_ERR_TIMEOUT;
}

/* What an SSL call that returned r asks for: KAA_OK after waiting for the
 * socket, or the error that ends the exchange. */
static int io_ssl_retry(boot_io *io, int r)
{
	switch (SSL_get_error(io->ssl, r)) {
	case SSL_ERROR_WANT_READ: return io_wait(io, POLLIN);
	case SSL_ERROR_WANT_WRITE: return io_wait(io, POLLOUT);
	default: return KAA_ERR_UNAVAILABLE;
	}
}

static bool is_ip_literal(const char *host)
{
	unsigned char b[16];
	return inet_pton(AF_INET, host, b) == 1 || inet_pton(AF_INET6, host, b) == 1;
}

/* TLS 1.2+ with the server's certificate verified against ca_file (or the
 * system's CAs) and its name (or IP address) checked. */
static int io_tls_start(boot_io *io, const char *host, const char *ca_file)
{
	int r, rc;
	io->ctx = SSL_CTX_new(TLS_client_method());
	if (!io->ctx)
		return KAA_ERR_NOMEM;
	SSL_CTX_set_min_proto_version(io->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(io->ctx, SSL_VERIFY_PEER, NULL);
	r = ca_file ? SSL_CTX_load_verify_locations(io->ctx, ca_file, NULL)
		    : SSL_CTX_set_default_verify_paths(io->ctx);
	if (r != 1)
		return KAA_ERR_IO;
	io->ssl = SSL_new(io->ctx);
	if (!io->ssl || SSL_set_fd(io->ssl, io->fd) != 1)
		return KAA_ERR_NOMEM;
	if (is_ip_literal(host)) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(io->ssl), host) != 1)
			return KAA_ERR_INVAL;
	} else if (SSL_set1_host(io->ssl, host) != 1 ||
		   SSL_set_tlsext_host_name(io->ssl, host) != 1) {
		return KAA_ERR_INVAL;
	}
	while ((r = SSL_connect(io->ssl)) != 1)
		if ((rc = io_ssl_retry(io, r)) != KAA_OK)
			return rc;
	return KAA_OK;
}

static int io_send_all(boot_io *io, const char *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		if (io->ssl) {
			int w = SSL_write(io->ssl, buf + off, (int)(len - off));
			int rc;
			if (w > 0)
				off += (size_t)w;
			else if ((rc = io_ssl_retry(io, w)) != KAA_OK)
				return rc;
			continue;
		}
		ssize_t w = send(io->fd, buf + off, len - off, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			int rc = io_wait(io, POLLOUT);
			if (rc != KAA_OK)
				return rc;
			continue;
		}
		if (w <= 0)
			return KAA_ERR_UNAVAILABLE;
		off += (size_t)w;
	}
	return KAA_OK;
}

/* Reads into buf[0..cap): the byte count, 0 at the end of the answer, or a
 * negative error. */
static long io_recv(boot_io *io, char *buf, size_t cap)
{
	for (;;) {
		int rc;
		if (io->ssl) {
			int r = SSL_read(io->ssl, buf, (int)cap);
			if (r > 0)
				return r;
			if (SSL_get_error(io->ssl, r) == SSL_ERROR_ZERO_RETURN)
				return 0;
			if ((rc = io_ssl_retry(io, r)) != KAA_OK)
				return rc;
			continue;
		}
		if ((rc = io_wait(io, POLLIN)) != KAA_OK)
			return rc;
		ssize_t r = recv(io->fd, buf, cap, 0);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r < 0)
			return KAA_ERR_UNAVAILABLE;
		return (long)r;
	}
}

static void io_close(boot_io *io)
{
	SSL_free(io->ssl);
	SSL_CTX_free(io->ctx);
	if (io->fd >= 0)
		close(io->fd);
}

int kaa__sdk_bootstrap_fetch(const char *server, const char *ca_file, const char *app_token,
			     int timeout_ms, kaa__node_addr *nodes, size_t max, size_t *n)
{
	char tok[3 * 1024 + 4], req[4096 + KAA__URL_MAX], hostport[KAA__URL_HOST_MAX + 8];
	char *buf = NULL;
	size_t got = 0, plen;
	kaa__device_url u;
	boot_io io = {.fd = -1, .deadline = kaa__now_ms() + timeout_ms};
	int rc, reqlen;

	*n = 0;
	if (kaa__device_url_parse(server, KAA__URL_HTTP | KAA__URL_BARE, &u) != KAA_OK ||
	    strlen(app_token) > 1024)
		return KAA_ERR_INVAL;
	url_escape(app_token, tok, sizeof(tok));
	plen = strlen(u.path);
	if (plen > 0 && u.path[plen - 1] == '/')
		u.path[--plen] = '\0'; /* PREFIX/v1/... without a double slash */
	snprintf(hostport, sizeof(hostport), strchr(u.host, ':') ? "[%s]:%u" : "%s:%u", u.host,
		 (unsigned)u.port);
	reqlen = snprintf(req, sizeof(req),
			  "GET %s/v1/operations?application=%s HTTP/1.1\r\nHost: %s\r\n"
			  "Connection: close\r\nAccept: application/json\r\n\r\n",
			  u.path, tok, hostport);
	if (reqlen < 0 || reqlen >= (int)sizeof(req))
		return KAA_ERR_INVAL;
	io.fd = connect_deadline(u.host, u.port, io.deadline);
	if (io.fd < 0)
		return io.fd;
	if (u.tls && (rc = io_tls_start(&io, u.host, ca_file)) != KAA_OK) {
		if (rc == KAA_ERR_INVAL || rc == KAA_ERR_IO)
			rc = KAA_ERR_UNAVAILABLE;
		goto out;
	}
	if ((rc = io_send_all(&io, req, (size_t)reqlen)) != KAA_OK)
		goto out;
	buf = malloc(BOOT_MAX_ANSWER + 4096 + 1);
	if (!buf) {
		rc = KAA_ERR_NOMEM;
		goto out;
	}
	for (;;) {
		long r = io_recv(&io, buf + got, BOOT_MAX_ANSWER + 4096 - got);
		if (r < 0) {
			rc = (int)r;
			goto out;
		}
		if (r == 0)
			break;
		got += (size_t)r;
		if (got >= BOOT_MAX_ANSWER + 4096) {
			rc = KAA_ERR_TOO_BIG;
			goto out;
		}
		buf[got] = '\0';
		if (answer_complete(buf, got))
			break;
	}
	buf[got] = '\0';
	/* "HTTP/1.x 200 ...", then headers; the body runs to the close. A
	 * chunked answer is not expected from our bootstrap service. */
	if (got < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 8, " 200", 4) != 0) {
		rc = KAA_ERR_PROTOCOL;
		goto out;
	}
	char *body = strstr(buf, "\r\n\r\n");
	if (!body) {
		rc = KAA_ERR_PROTOCOL;
		goto out;
	}
	*body = '\0';
	if (strcasestr(buf, "transfer-encoding: chunked")) {
		rc = KAA_ERR_PROTOCOL;
		goto out;
	}
	body += 4;
	rc = kaa__sdk_bootstrap_parse(body, got - (size_t)(body - buf), nodes, max, n);
	if (rc == KAA_ERR_INVAL)
		rc = KAA_ERR_PROTOCOL;
out:
	free(buf);
	io_close(&io);
	return rc;
}
