/*
 * The operations service end to end over its real WebSocket port: two
 * kaa-node processes (the one from $KAA_ASAN_BIN_DIR, else $KAA_BIN_DIR) on
 * etcd ($KAA_TEST_ETCD), PostgreSQL ($KAA_TEST_PG) and FerretDB
 * ($KAA_TEST_MONGO), set up through the control REST API (libcurl), driven
 * by a raw-socket WebSocket client speaking kaa.v1 frame by frame:
 * registration (unknown token refused), configuration on connect and pushed
 * after a REST change (through etcd), a notification created over REST
 * delivered live and not again after the ack, logs stored once in MongoDB
 * when a batch is re-sent on a new connection, a bad frame answered with an
 * Error while the session goes on, and drain through the etcd drain key:
 * Redirect to the other node, draining=true in the registry record.
 * A missing variable is a failure: e2e/run-tests.sh sets them all.
 */
#include "cu_main.h"
#include "test_util.h"
#include "coord/coord.h"
#include "proto/endpoint_codec.h"
#include "proto/hello_proof.h"
#include "store/endpoint_store.h"
#include "base/error.h"
#include "json/json_merge.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef Kaa__Endpoint__V1__Frame frame_t;
#define BODY(x) KAA__ENDPOINT__V1__FRAME__BODY_##x

static const char *etcd_url, *pg_url, *mongo_url;
static char node_bin[1024], cluster[64], tmpdir[512];

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	close(fd);
	return ntohs(a.sin_port);
}

/* ---- HTTP (libcurl) ------------------------------------------------------------------ */

typedef struct buf {
	char *p;
	size_t n;
} buf;

static size_t on_body(char *d, size_t sz, size_t nm, void *ud)
{
	buf *b = ud;
	size_t n = sz * nm;
	char *p = realloc(b->p, b->n + n + 1);
	if (!p)
		return 0;
	memcpy(p + b->n, d, n);
	b->p = p;
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

/* Returns the status (0: no answer); *resp (may be NULL) gets the body. */
static long http_h(const char *method, const char *url, const char *user, const char *body,
		   const char *header, char **resp)
{
	CURL *c = curl_easy_init();
	buf b = {0};
	long code = 0;
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	if (header)
		h = curl_slist_append(h, header);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (user)
		curl_easy_setopt(c, CURLOPT_USERPWD, user);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (resp)
		*resp = b.p;
	else
		free(b.p);
	return code;
}

static long http(const char *method, const char *url, const char *user, const char *body,
		 char **resp)
{
	return http_h(method, url, user, body, NULL, resp);
}

/* A member of a JSON object answer: integer id or string. */
static int64_t json_int(const char *json, const char *key)
{
	yajl_val v = NULL;
	int64_t r = 0;
	if (json && kaa__json_parse(json, strlen(json), 1 << 20, 64, &v, NULL, 0) == KAA_OK) {
		const char *path[] = {key, NULL};
		yajl_val x = yajl_tree_get(v, path, yajl_t_number);
		if (x)
			kaa__json_int64(x, &r);
		yajl_tree_free(v);
	}
	return r;
}

static void json_str(const char *json, const char *key, char *out, size_t cap)
{
	yajl_val v = NULL;
	out[0] = '\0';
	if (json && kaa__json_parse(json, strlen(json), 1 << 20, 64, &v, NULL, 0) == KAA_OK) {
		const char *path[] = {key, NULL};
		yajl_val x = yajl_tree_get(v, path, yajl_t_string);
		if (x)
			snprintf(out, cap, "%s", x->u.string);
		yajl_tree_free(v);
	}
}

/* POST expecting 201; returns the new id (0 and a failure otherwise). */
static int64_t create(const char *base, const char *user, const char *path, const char *body,
		      char **resp)
{
	char url[512], *r = NULL;
	snprintf(url, sizeof(url), "%s/api/v1%s", base, path);
	long code = http("POST", url, user, body, &r);
	if (code != 201)
		fprintf(stderr, "POST %s -> %ld %s\n", path, code, r ? r : "");
	CU_ASSERT_EQUAL(code, 201);
	int64_t id = json_int(r, "id");
	if (resp)
		*resp = r;
	else
		free(r);
	return id;
}

/* ---- kaa-node processes ---------------------------------------------------------------- */

typedef struct node {
	pid_t pid;
	char id[32];
	int control, bootstrap, ops, internode;
	char base[64];
} node;

static bool http_ok(const char *url)
{
	return http("GET", url, NULL, NULL, NULL) == 200;
}

static bool wait_ready(int port, int timeout_ms)
{
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/readyz", port);
	int64_t until = now_ms() + timeout_ms;
	while (now_ms() < until) {
		if (http_ok(url))
			return true;
		pause_ms(50);
	}
	return false;
}

static bool start_node(node *n, const char *id, const char *services)
{
	char cport[16], bport[16], oport[16], iport[16], logp[700], adir[700];
	memset(n, 0, sizeof(*n));
	snprintf(n->id, sizeof(n->id), "%s", id);
	n->control = free_port();
	n->bootstrap = free_port();
	n->ops = free_port();
	n->internode = free_port();
	snprintf(cport, sizeof(cport), "%d", n->control);
	snprintf(bport, sizeof(bport), "%d", n->bootstrap);
	snprintf(oport, sizeof(oport), "%d", n->ops);
	snprintf(iport, sizeof(iport), "%d", n->internode);
	snprintf(n->base, sizeof(n->base), "http://127.0.0.1:%d", n->control);
	snprintf(logp, sizeof(logp), "%s/%s.log", tmpdir, id);
	snprintf(adir, sizeof(adir), "%s/logs-%s", tmpdir, id);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		setenv("KAA_ADMIN_USER", "root", 1);
		setenv("KAA_ADMIN_PASSWORD", "rootpass123", 1);
		execl(node_bin, node_bin, "--services", services, "--node-id", id, "--cluster",
		      cluster, "--etcd", etcd_url, "--sql", pg_url, "--nosql", mongo_url,
		      "--control-port", cport, "--bootstrap-port", bport, "--operations-port",
		      oport, "--internode-port", iport, "--bind", "127.0.0.1", "--host",
		      "127.0.0.1", "--lease-ttl", "3", "--drain-timeout", "5", "--appender-dir",
		      adir, (char *)NULL);
		_exit(127);
	}
	n->pid = pid;
	return pid > 0 && wait_ready(n->ops, 20000);
}

/* SIGTERM and wait (bounded); returns the exit status or -1. */
static int stop_node(node *n, int timeout_ms)
{
	int st = 0;
	if (n->pid <= 0)
		return -1;
	kill(n->pid, SIGTERM);
	int64_t until = now_ms() + timeout_ms;
	while (now_ms() < until) {
		pid_t r = waitpid(n->pid, &st, WNOHANG);
		if (r == n->pid) {
			n->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		pause_ms(20);
	}
	kill(n->pid, SIGKILL);
	waitpid(n->pid, &st, 0);
	n->pid = 0;
	return -1;
}

/* ---- a raw WebSocket client -------------------------------------------------------------- */

#define INBOX 256

typedef struct ws {
	int fd;
	bool closed;
	frame_t *inbox[INBOX]; /* received, not yet taken */
	size_t n;
} ws;

static bool write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w <= 0)
			return false;
		b += w;
		n -= (size_t)w;
	}
	return true;
}

/* Reads exactly n bytes within the deadline. */
static bool read_all(int fd, void *p, size_t n, int64_t deadline)
{
	uint8_t *b = p;
	while (n) {
		int left = (int)(deadline - now_ms());
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&pfd, 1, left) <= 0)
			return false;
		ssize_t r = recv(fd, b, n, 0);
		if (r <= 0)
			return false;
		b += r;
		n -= (size_t)r;
	}
	return true;
}

/* Opens a WebSocket offering the subprotocols protos; *chosen (when not
 * NULL) gets the one the server picked. */
static bool ws_connect_proto(ws *w, int port, const char *protos, char *chosen, size_t cap)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char req[512], resp[2048];
	size_t got = 0;
	memset(w, 0, sizeof(*w));
	w->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (w->fd < 0 || connect(w->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		return false;
	int len = snprintf(req, sizeof(req),
			   "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
			   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
			   "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
			   port, protos);
	if (!write_all(w->fd, req, (size_t)len))
		return false;
	int64_t deadline = now_ms() + 5000;
	while (got < sizeof(resp) - 1) {
		if (!read_all(w->fd, resp + got, 1, deadline))
			return false;
		got++;
		resp[got] = '\0';
		if (got >= 4 && strcmp(resp + got - 4, "\r\n\r\n") == 0)
			break;
	}
	if (chosen) {
		const char *h = strcasestr(resp, "\r\nSec-WebSocket-Protocol:");
		chosen[0] = '\0';
		if (h)
			sscanf(h + 26, " %63[^\r]", chosen);
		(void)cap;
	}
	return strncmp(resp, "HTTP/1.1 101", 12) == 0;
}

static bool ws_connect(ws *w, int port)
{
	return ws_connect_proto(w, port, "kaa.v1", NULL, 0);
}

static bool ws_send_raw(ws *w, int opcode, const void *data, size_t len)
{
	uint8_t h[14], mask[4] = {0x12, 0x34, 0x56, 0x78};
	size_t hl = 0;
	h[hl++] = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		h[hl++] = (uint8_t)(0x80 | len);
	} else if (len < 65536) {
		h[hl++] = 0x80 | 126;
		h[hl++] = (uint8_t)(len >> 8);
		h[hl++] = (uint8_t)len;
	} else {
		h[hl++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			h[hl++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	memcpy(h + hl, mask, 4);
	hl += 4;
	uint8_t *m = malloc(len + 1);
	if (!m)
		return false;
	for (size_t i = 0; i < len; i++)
		m[i] = ((const uint8_t *)data)[i] ^ mask[i % 4];
	bool ok = write_all(w->fd, h, hl) && write_all(w->fd, m, len);
	free(m);
	return ok;
}

static bool ws_send(ws *w, frame_t *f)
{
	uint8_t *b = NULL;
	size_t n = 0;
	f->protocol_version = 1;
	if (kaa__frame_encode(f, &b, &n) != KAA_OK)
		return false;
	bool ok = ws_send_raw(w, 2, b, n);
	free(b);
	return ok;
}

/* Reads one WebSocket message into the inbox; false on close/timeout. */
static bool ws_pump(ws *w, int64_t deadline)
{
	uint8_t h[2], ext[8];
	if (w->closed || !read_all(w->fd, h, 2, deadline))
		return false;
	uint64_t len = h[1] & 0x7f;
	if (len == 126) {
		if (!read_all(w->fd, ext, 2, deadline))
			return false;
		len = (uint64_t)ext[0] << 8 | ext[1];
	} else if (len == 127) {
		if (!read_all(w->fd, ext, 8, deadline))
			return false;
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | ext[i];
	}
	if (len > (1u << 20))
		return false;
	uint8_t *p = malloc(len + 1);
	if (!p || !read_all(w->fd, p, len, deadline)) {
		free(p);
		return false;
	}
	int op = h[0] & 0x0f;
	if (op == 8) {
		w->closed = true;
		free(p);
		return false;
	}
	if (op == 2) {
		frame_t *f = NULL;
		if (kaa__frame_decode(p, len, NULL, &f, NULL) == KAA_OK && w->n < INBOX)
			w->inbox[w->n++] = f;
		else
			kaa__frame_free(f);
	}
	free(p);
	return true;
}

/* Takes the first received frame of a kind, waiting up to timeout_ms. */
static frame_t *ws_take(ws *w, int body, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		for (size_t i = 0; i < w->n; i++) {
			if ((int)w->inbox[i]->body_case == body) {
				frame_t *f = w->inbox[i];
				memmove(&w->inbox[i], &w->inbox[i + 1], (w->n - i - 1) * sizeof(f));
				w->n--;
				return f;
			}
		}
		if (!ws_pump(w, deadline))
			return NULL;
	}
}

/* True when the server closes the connection within timeout_ms. */
static bool ws_wait_closed(ws *w, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	while (!w->closed) {
		uint8_t c;
		struct pollfd pfd = {.fd = w->fd, .events = POLLIN};
		int left = (int)(deadline - now_ms());
		if (left <= 0 || poll(&pfd, 1, left) <= 0)
			return false;
		ssize_t r = recv(w->fd, &c, 1, MSG_PEEK);
		if (r == 0)
			return true;
		if (r < 0)
			return errno == ECONNRESET;
		if (!ws_pump(w, deadline) && !w->closed)
			return true;
	}
	return true;
}

static void ws_close(ws *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	for (size_t i = 0; i < w->n; i++)
		kaa__frame_free(w->inbox[i]);
	w->n = 0;
}

static void ws_hello(ws *w, uint64_t req, const char *token, const char *key)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Hello h = KAA__ENDPOINT__V1__HELLO__INIT;
	h.application_token = (char *)token;
	h.public_key.data = (uint8_t *)key;
	h.public_key.len = strlen(key);
	h.client_profile_json = "{\"region\":\"eu\"}";
	f.request_id = req;
	f.body_case = BODY(HELLO);
	f.hello = &h;
	CU_ASSERT_TRUE(ws_send(w, &f));
}

/* A kaa.v2 Hello with key's DER public key and proof (may be NULL). */
static void ws_hello_proof(ws *w, const char *token, const uint8_t *pub, size_t pl,
			   const uint8_t *proof, size_t proof_len)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Hello h = KAA__ENDPOINT__V1__HELLO__INIT;
	h.application_token = (char *)token;
	h.public_key.data = (uint8_t *)pub;
	h.public_key.len = pl;
	h.proof.data = (uint8_t *)proof;
	h.proof.len = proof ? proof_len : 0;
	f.request_id = 1;
	f.body_case = BODY(HELLO);
	f.hello = &h;
	CU_ASSERT_TRUE(ws_send(w, &f));
}

/* Proof of possession on real sockets: the server prefers kaa.v2, sends
 * the Challenge first, accepts the signed Hello, refuses the same proof
 * on another connection; kaa.v1 still works for a trustful application. */
static void check_proof(int port, const char *token)
{
	ws w = {.fd = -1}, w2 = {.fd = -1};
	char chosen[64];
	EVP_PKEY *k = EVP_EC_gen("P-256");
	uint8_t pub[256], *pp = pub, sig[KAA__PROOF_SIG_MAX];
	size_t sl = 0;
	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	int pl = i2d_PUBKEY(k, &pp);
	CU_ASSERT_FATAL(pl > 0);

	CU_ASSERT_TRUE_FATAL(ws_connect_proto(&w, port, "kaa.v2, kaa.v1", chosen, sizeof(chosen)));
	CU_ASSERT_STRING_EQUAL(chosen, "kaa.v2");
	frame_t *c = ws_take(&w, BODY(CHALLENGE), 5000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->request_id, 0);
	CU_ASSERT_EQUAL_FATAL(c->challenge->nonce.len, KAA__PROOF_NONCE_BYTES);
	CU_ASSERT_EQUAL(kaa__proof_sign(k, c->challenge->nonce.data, pub, (size_t)pl, token, sig,
					sizeof(sig), &sl),
			KAA_OK);
	ws_hello_proof(&w, token, pub, (size_t)pl, sig, sl);
	frame_t *ack = ws_take(&w, BODY(HELLO_ACK), 5000);
	CU_ASSERT_PTR_NOT_NULL(ack);
	kaa__frame_free(ack);

	/* the same proof on a new connection: its nonce differs */
	CU_ASSERT_TRUE_FATAL(ws_connect_proto(&w2, port, "kaa.v2", chosen, sizeof(chosen)));
	frame_t *c2 = ws_take(&w2, BODY(CHALLENGE), 5000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
	CU_ASSERT_NOT_EQUAL(memcmp(c->challenge->nonce.data, c2->challenge->nonce.data, 32), 0);
	ws_hello_proof(&w2, token, pub, (size_t)pl, sig, sl);
	frame_t *e = ws_take(&w2, BODY(ERROR), 5000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->error->code, KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_INVALID_PROOF);
	CU_ASSERT_TRUE(e->error->fatal);
	CU_ASSERT_PTR_NULL(ws_take(&w2, BODY(HELLO_ACK), 200));
	CU_ASSERT_TRUE(ws_wait_closed(&w2, 5000));
	kaa__frame_free(e);
	kaa__frame_free(c);
	kaa__frame_free(c2);
	ws_close(&w2);
	ws_close(&w);

	/* kaa.v1: no Challenge, and a trustful application takes the Hello */
	CU_ASSERT_TRUE_FATAL(ws_connect_proto(&w, port, "kaa.v1", chosen, sizeof(chosen)));
	CU_ASSERT_STRING_EQUAL(chosen, "kaa.v1");
	ws_hello_proof(&w, token, pub, (size_t)pl, NULL, 0);
	ack = ws_take(&w, BODY(HELLO_ACK), 5000);
	CU_ASSERT_PTR_NOT_NULL(ack);
	kaa__frame_free(ack);
	CU_ASSERT_PTR_NULL(ws_take(&w, BODY(CHALLENGE), 100));
	ws_close(&w);
	EVP_PKEY_free(k);
}

static void ws_ack(ws *w, uint64_t req)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Ack a = KAA__ENDPOINT__V1__ACK__INIT;
	f.request_id = req;
	f.body_case = BODY(ACK);
	f.ack = &a;
	CU_ASSERT_TRUE(ws_send(w, &f));
}

static void ws_logs(ws *w, uint64_t req, uint64_t batch, const char **recs, size_t n)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__LogUpload l = KAA__ENDPOINT__V1__LOG_UPLOAD__INIT;
	l.batch_id = batch;
	l.records_json = (char **)recs;
	l.n_records_json = n;
	f.request_id = req;
	f.body_case = BODY(LOG_UPLOAD);
	f.log_upload = &l;
	CU_ASSERT_TRUE(ws_send(w, &f));
}

static void key_hash(const char *key, char out[48])
{
	uint8_t d[SHA256_DIGEST_LENGTH];
	unsigned char b[64];
	SHA256((const uint8_t *)key, strlen(key), d);
	EVP_EncodeBlock(b, d, sizeof(d));
	size_t j = 0;
	for (size_t i = 0; b[i] && b[i] != '='; i++)
		out[j++] = b[i] == '+' ? '-' : b[i] == '/' ? '_' : (char)b[i];
	out[j] = '\0';
}

/* ---- the scenario ------------------------------------------------------------------------ */

static node a, b; /* killed at exit if a failed assertion left them running */

static bool metric_has(int port, const char *line)
{
	char url[128], *r = NULL;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
	bool ok = http("GET", url, NULL, NULL, &r) == 200 && r && strstr(r, line);
	free(r);
	return ok;
}

static void test_device_session(void)
{
	char *r = NULL, token[128], tadmin[128], tdev[128], path[256], body[1024];
	char key[128], kh[48];
	ws w = {.fd = -1}, w2 = {.fd = -1};
	kaa__ep_store *eps = NULL;
	kaa__coord *coord = NULL;

	CU_ASSERT_TRUE_FATAL(etcd_url && pg_url && mongo_url && node_bin[0]);
	CU_ASSERT_TRUE_FATAL(start_node(&a, "ops-a", "control,operations,bootstrap"));
	CU_ASSERT_TRUE_FATAL(wait_ready(a.control, 20000));

	/* tenant, users, application, schemas, groups, configuration, topic */
	snprintf(body, sizeof(body), "{\"name\":\"%s\"}", cluster);
	int64_t tenant = create(a.base, "root:rootpass123", "/tenants", body, NULL);
	snprintf(path, sizeof(path), "/tenants/%" PRId64 "/users", tenant);
	snprintf(body, sizeof(body),
		 "{\"name\":\"adm-%s\",\"role\":\"tenant-admin\",\"password\":\"password-1\"}",
		 cluster);
	create(a.base, "root:rootpass123", path, body, NULL);
	snprintf(body, sizeof(body),
		 "{\"name\":\"dev-%s\",\"role\":\"tenant-developer\",\"password\":\"password-1\"}",
		 cluster);
	create(a.base, "root:rootpass123", path, body, NULL);
	snprintf(tadmin, sizeof(tadmin), "adm-%s:password-1", cluster);
	snprintf(tdev, sizeof(tdev), "dev-%s:password-1", cluster);
	snprintf(path, sizeof(path), "/tenants/%" PRId64 "/applications", tenant);
	int64_t app = create(a.base, tadmin, path, "{\"name\":\"ws\"}", &r);
	json_str(r, "applicationToken", token, sizeof(token));
	free(r);
	CU_ASSERT_TRUE_FATAL(app > 0 && token[0]);
	snprintf(path, sizeof(path), "/applications/%" PRId64 "/schemas", app);
	create(a.base, tdev, path,
	       "{\"kind\":\"configuration\",\"schema\":{\"type\":\"record\",\"name\":\"C\","
	       "\"fields\":[{\"name\":\"rate\",\"type\":\"int\",\"default\":1}]}}",
	       NULL);
	create(a.base, tdev, path,
	       "{\"kind\":\"log\",\"schema\":{\"type\":\"record\",\"name\":\"L\","
	       "\"fields\":[{\"name\":\"t\",\"type\":\"double\"}]}}",
	       NULL);
	snprintf(path, sizeof(path), "/applications/%" PRId64 "/groups", app);
	int64_t geu =
		create(a.base, tdev, path,
		       "{\"name\":\"eu\",\"weight\":10,\"filter\":{\"cp.region\":\"eu\"}}", NULL);
	snprintf(path, sizeof(path), "/applications/%" PRId64 "/configurations", app);
	snprintf(body, sizeof(body),
		 "{\"groupId\":%" PRId64 ",\"schemaVersion\":1,\"body\":{\"rate\":7}}", geu);
	int64_t cfg = create(a.base, tdev, path, body, NULL);
	snprintf(path, sizeof(path), "/applications/%" PRId64 "/topics", app);
	int64_t topic =
		create(a.base, tdev, path, "{\"name\":\"alerts\",\"mandatory\":true}", NULL);

	/* an unknown application token: fatal error, then closed */
	CU_ASSERT_TRUE_FATAL(ws_connect(&w, a.ops));
	ws_hello(&w, 1, "not-a-token", "k");
	frame_t *f = ws_take(&w, BODY(ERROR), 5000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(f->error->code, KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_UNAUTHENTICATED);
	CU_ASSERT_TRUE(f->error->fatal);
	kaa__frame_free(f);
	CU_ASSERT_TRUE(ws_wait_closed(&w, 5000));
	ws_close(&w);

	/* registration, topics and the configuration of the EU group */
	snprintf(key, sizeof(key), "device-key-%s", cluster);
	key_hash(key, kh);
	CU_ASSERT_TRUE_FATAL(ws_connect(&w, a.ops));
	ws_hello(&w, 1, token, key);
	f = ws_take(&w, BODY(HELLO_ACK), 5000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_TRUE(f->hello_ack->registered);
	CU_ASSERT_STRING_EQUAL(f->hello_ack->endpoint_key_hash, kh);
	kaa__frame_free(f);
	f = ws_take(&w, BODY(NOTIFICATION_TOPICS), 5000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(f->notification_topics->n_topics, 1);
	kaa__frame_free(f);
	f = ws_take(&w, BODY(CONFIG_PUSH), 5000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL_FATAL(f->config_push->result_case,
			      KAA__ENDPOINT__V1__CONFIG_PUSH__RESULT_FULL);
	CU_ASSERT_STRING_EQUAL(f->config_push->full->json, "{\"rate\":7}");
	ws_ack(&w, f->request_id);
	kaa__frame_free(f);

	/* a REST change reaches the device through etcd as a merge patch */
	snprintf(path, sizeof(path), "%s/api/v1/applications/%" PRId64 "/configurations/%" PRId64,
		 a.base, app, cfg);
	CU_ASSERT_EQUAL(
		http_h("PUT", path, tdev, "{\"body\":{\"rate\":9}}", "If-Match: \"1\"", NULL), 200);
	f = ws_take(&w, BODY(CONFIG_PUSH), 10000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL_FATAL(f->config_push->result_case,
			      KAA__ENDPOINT__V1__CONFIG_PUSH__RESULT_PATCH);
	CU_ASSERT_STRING_EQUAL(f->config_push->patch->patch_json, "{\"rate\":9}");
	ws_ack(&w, f->request_id);
	kaa__frame_free(f);

	/* a notification created over REST arrives live */
	snprintf(path, sizeof(path), "/applications/%" PRId64 "/notifications", app);
	snprintf(body, sizeof(body), "{\"topicId\":%" PRId64 ",\"body\":{\"msg\":\"hi\"}}", topic);
	create(a.base, tdev, path, body, NULL);
	f = ws_take(&w, BODY(NOTIFICATION), 10000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(f->notification->seq, 1);
	CU_ASSERT_STRING_EQUAL(f->notification->body_json, "{\"msg\":\"hi\"}");
	frame_t na = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__NotificationAck nab = KAA__ENDPOINT__V1__NOTIFICATION_ACK__INIT;
	nab.topic_id = f->notification->topic_id;
	nab.seq = 1;
	na.body_case = BODY(NOTIFICATION_ACK);
	na.notification_ack = &nab;
	CU_ASSERT_TRUE(ws_send(&w, &na));
	kaa__frame_free(f);

	/* bytes that are not a Frame: an Error, and the session goes on */
	CU_ASSERT_TRUE(ws_send_raw(&w, 2, "\xff\xff\xff", 3));
	f = ws_take(&w, BODY(ERROR), 5000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(f->error->code, KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_BAD_FRAME);
	kaa__frame_free(f);

	/* logs: stored in MongoDB, once even when re-sent on a new session */
	const char *recs[] = {"{\"t\":1}", "{\"t\":2}", "{\"t\":3}"};
	ws_logs(&w, 50, 777, recs, 3);
	f = ws_take(&w, BODY(LOG_DELIVERY_STATUS), 10000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(f->log_delivery_status->status,
			KAA__ENDPOINT__V1__LOG_DELIVERY_RESULT__LOG_DELIVERY_RESULT_SUCCESS);
	kaa__frame_free(f);
	ws_close(&w);
	CU_ASSERT_TRUE_FATAL(ws_connect(&w, a.ops));
	ws_hello(&w, 1, token, key);
	f = ws_take(&w, BODY(HELLO_ACK), 5000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_FALSE(f->hello_ack->registered);
	kaa__frame_free(f);
	ws_logs(&w, 2, 777, recs, 3);
	f = ws_take(&w, BODY(LOG_DELIVERY_STATUS), 10000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(f->log_delivery_status->status,
			KAA__ENDPOINT__V1__LOG_DELIVERY_RESULT__LOG_DELIVERY_RESULT_SUCCESS);
	kaa__frame_free(f);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_store_new(mongo_url, &eps), KAA_OK);
	int64_t cnt = -1;
	CU_ASSERT_EQUAL(kaa__ep_logs_count(eps, app, kh, &cnt), KAA_OK);
	CU_ASSERT_EQUAL(cnt, 3);
	CU_ASSERT_TRUE(
		metric_has(a.ops, "\nkaa_ops_registrations_total{result=\"registered\"} 1\n"));
	CU_ASSERT_TRUE(metric_has(a.ops, "\nkaa_ops_registrations_total{result=\"existing\"} 1\n"));
	CU_ASSERT_TRUE(
		metric_has(a.ops, "\nkaa_ops_registrations_total{result=\"unauthenticated\"} 1\n"));
	CU_ASSERT_TRUE(metric_has(a.ops, "\nkaa_ops_log_records_total 3\n"));
	CU_ASSERT_TRUE(metric_has(a.ops, "\nkaa_ops_log_batches_duplicate_total 1\n"));
	CU_ASSERT_TRUE(metric_has(a.ops, "\nkaa_ops_notifications_sent_total 1\n"));
	check_proof(a.ops, token); /* after the counts above: it registers one more */
	CU_ASSERT_TRUE(metric_has(a.ops, "\nkaa_ops_hello_proofs_total 1\n"));
	CU_ASSERT_TRUE(
		metric_has(a.ops, "\nkaa_ops_registrations_total{result=\"invalid_proof\"} 1\n"));
	kaa__endpoint ep = {0};
	CU_ASSERT_EQUAL(kaa__ep_get(eps, app, kh, &ep), KAA_OK);
	CU_ASSERT_TRUE(ep.node_id && strcmp(ep.node_id, "ops-a") == 0);
	kaa__endpoint_clear(&ep);
	/* the acknowledged notification is not sent again */
	f = ws_take(&w, BODY(CONFIG_PUSH), 5000);
	CU_ASSERT_PTR_NOT_NULL(f);
	if (f)
		ws_ack(&w, f->request_id);
	kaa__frame_free(f);
	f = ws_take(&w, BODY(NOTIFICATION), 1500);
	CU_ASSERT_PTR_NULL(f);
	kaa__frame_free(f);

	/* drain through etcd: Redirect to the second node, then closed */
	CU_ASSERT_TRUE_FATAL(start_node(&b, "ops-b", "operations"));
	CU_ASSERT_EQUAL_FATAL(kaa__coord_new_etcd(etcd_url, NULL, &coord), KAA_OK);
	char dkey[128], nkey[128], dval[64];
	snprintf(dkey, sizeof(dkey), "/kaa/%s/drain/ops-a", cluster);
	snprintf(nkey, sizeof(nkey), "/kaa/%s/nodes/ops-a", cluster);
	/* node-a must see node-b in its registry view before draining */
	kaa__kv kv = {0};
	int64_t until = now_ms() + 10000;
	while (!metric_has(a.control, "\nkaa_registry_nodes 2") && now_ms() < until)
		pause_ms(50);
	CU_ASSERT_TRUE(metric_has(a.control, "\nkaa_registry_nodes 2"));
	snprintf(dval, sizeof(dval), "{\"deadline_ms\":%" PRId64 "}", now_ms() + 8000);
	CU_ASSERT_EQUAL(kaa__coord_put(coord, dkey, dval, strlen(dval), 0, NULL), KAA_OK);
	f = ws_take(&w, BODY(REDIRECT), 10000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(f->redirect->reason,
			KAA__ENDPOINT__V1__REDIRECT_REASON__REDIRECT_REASON_DRAIN);
	CU_ASSERT_EQUAL_FATAL(f->redirect->n_targets, 1);
	CU_ASSERT_EQUAL(f->redirect->targets[0]->port, (uint32_t)b.ops);
	kaa__frame_free(f);
	CU_ASSERT_TRUE(ws_wait_closed(&w, 5000));
	ws_close(&w);
	/* the record says draining; readiness is off */
	bool draining = false;
	until = now_ms() + 5000;
	while (!draining && now_ms() < until) {
		if (kaa__coord_get(coord, nkey, &kv, NULL) == KAA_OK)
			draining = strstr(kv.value, "\"draining\":true") != NULL;
		kaa__kv_clear(&kv);
		if (!draining)
			pause_ms(50);
	}
	CU_ASSERT_TRUE(draining);
	char rurl[128];
	snprintf(rurl, sizeof(rurl), "http://127.0.0.1:%d/readyz", a.ops);
	CU_ASSERT_EQUAL(http("GET", rurl, NULL, NULL, NULL), 503);

	/* the device moves to node-b and gets the same configuration */
	CU_ASSERT_TRUE_FATAL(ws_connect(&w2, b.ops));
	ws_hello(&w2, 1, token, key);
	f = ws_take(&w2, BODY(HELLO_ACK), 5000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	kaa__frame_free(f);
	f = ws_take(&w2, BODY(CONFIG_PUSH), 5000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(f->config_push->result_case,
			KAA__ENDPOINT__V1__CONFIG_PUSH__RESULT_UP_TO_DATE);
	kaa__frame_free(f);
	ws_close(&w2);

	kaa__coord_delete(coord, dkey, false, NULL);
	CU_ASSERT_EQUAL(stop_node(&b, 15000), 0);
	CU_ASSERT_EQUAL(stop_node(&a, 15000), 0);
	kaa__coord_free(coord);
	kaa__ep_store_free(eps);
}

static const kaa__cu_test tests[] = {{"device session on two nodes", test_device_session}};

int main(void)
{
	etcd_url = kaa__test_require_env("KAA_TEST_ETCD");
	pg_url = kaa__test_require_env("KAA_TEST_PG");
	mongo_url = kaa__test_require_env("KAA_TEST_MONGO");
	const char *bindir = getenv("KAA_ASAN_BIN_DIR");
	if (!bindir || !*bindir)
		bindir = kaa__test_require_env("KAA_BIN_DIR");
	if (bindir)
		snprintf(node_bin, sizeof(node_bin), "%s/kaa-node", bindir);
	if (kaa__test_tmpdir(tmpdir, sizeof(tmpdir), "test_operations_ws") != 0) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(cluster, sizeof(cluster), "ws%d", (int)getpid());
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	int rc = kaa__cu_run("operations over WebSocket", tests, KAA__CU_COUNT(tests), NULL, NULL);
	curl_global_cleanup();
	for (node *n = &a; n; n = n == &a ? &b : NULL) {
		if (n->pid > 0) {
			kill(n->pid, SIGKILL);
			waitpid(n->pid, NULL, 0);
		}
	}
	if (rc)
		fprintf(stderr, "node logs kept in %s\n", tmpdir);
	else
		kaa__test_rm_tree(tmpdir);
	return rc;
}
