/*
 * http_server.h - a small embedded HTTP/1.1 server: /healthz, /readyz and
 * /metrics on every kaa-node port, later the control REST API.
 *
 * One I/O thread multiplexes the listening socket and every connection with
 * poll() over non-blocking sockets; a fixed pool of worker threads runs the
 * handler, so a slow handler (a SQL query) holds one worker, not the server.
 * Each connection carries one request at a time: pipelined requests stay
 * buffered until the previous response has been written. Bodies are
 * Content-Length only; Transfer-Encoding is refused with 501.
 *
 * Optionally HTTPS (kaa__http_server_set_tls), with the same limits.
 * Every size and duration that a client controls is bounded by
 * kaa__http_limits. Timeouts are swept by the poll loop from per-connection
 * timestamps (no per-connection timers):
 *   read timeout   from the first byte of a request (or from accept) until
 *                  the whole request is buffered; then 408 and close
 *   idle timeout   between requests on a keep-alive connection
 *   write timeout  from the moment a response is ready until it is written
 * Beyond max_connections a new connection is accepted, answered 503 and
 * closed, so the listen queue never fills silently. When accept() fails
 * for lack of descriptors (EMFILE), accepting pauses briefly and the error
 * is logged at most once a second.
 *
 * Threads:
 *   kaa__http_server_new/start/free: the owner's thread (free must not be
 *   called from a handler: it waits for the workers).
 *   kaa__http_server_port: any thread.
 *   The handler runs on worker threads, up to limits->workers calls at a
 *   time, so it must be thread-safe; it must return (free waits for it).
 *   kaa__http_parse_request and the response helpers are pure and
 *   reentrant.
 */
#ifndef KAA_HTTP_SERVER_H
#define KAA_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Zero in any field means its default. kaa__http_server_new refuses
 * max_header_bytes outside 256 B..1 MiB, max_body_bytes above 1 GiB,
 * max_headers above 10000, max_connections above 65536, workers above 64
 * and negative timeouts; the parser takes any value.
 */
typedef struct kaa__http_limits {
	size_t max_header_bytes;  /* request line + headers; default 16 KiB; 431 beyond */
	size_t max_body_bytes;    /* Content-Length above it gets 413; default 1 MiB */
	unsigned max_headers;     /* header lines; default 100; 431 beyond */
	unsigned max_connections; /* open connections; default 1024; 503 beyond */
	unsigned workers;         /* handler threads; default 4 */
	int read_timeout_ms;      /* whole request; default 10000 */
	int idle_timeout_ms;      /* keep-alive between requests; default 30000 */
	int write_timeout_ms;     /* whole response; default 30000 */
} kaa__http_limits;

#define KAA__HTTP_DEFAULT_MAX_HEADER_BYTES (16u * 1024)
#define KAA__HTTP_DEFAULT_MAX_BODY_BYTES (1024u * 1024)
#define KAA__HTTP_DEFAULT_MAX_HEADERS 100u
#define KAA__HTTP_DEFAULT_MAX_CONNECTIONS 1024u
#define KAA__HTTP_DEFAULT_WORKERS 4u
#define KAA__HTTP_DEFAULT_READ_TIMEOUT_MS 10000
#define KAA__HTTP_DEFAULT_IDLE_TIMEOUT_MS 30000
#define KAA__HTTP_DEFAULT_WRITE_TIMEOUT_MS 30000

/* Fills every field with its default. */
void kaa__http_limits_default(kaa__http_limits *l);

typedef struct kaa__http_header_field {
	const char *name;  /* as sent (case preserved) */
	const char *value; /* leading and trailing blanks removed */
} kaa__http_header_field;

/*
 * A parsed request. Every string is NUL-terminated and owned by the
 * request (one allocation released by kaa__http_request_clear); nothing
 * points into the buffer that was parsed.
 */
typedef struct kaa__http_request {
	const char *method; /* token as sent, case-sensitive: "GET" */
	const char *path;   /* raw (not percent-decoded), starts with '/', or "*" */
	const char *query;  /* raw text after '?', "" when absent */
	int version_minor;  /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
	const kaa__http_header_field *headers;
	size_t n_headers;
	const char *body; /* NUL-terminated for convenience; "" when none */
	size_t body_len;
	bool keep_alive;          /* per version and the Connection header */
	bool expect_continue;     /* Expect: 100-continue; on INCOMPLETE once the head is whole */
	const char *peer;         /* client address; set by the server, NULL from the parser */
	int error_status;         /* on a parse error: the status to answer with */
	const char *error_reason; /* on a parse error: static text for the client */
	void *storage_;           /* private */
} kaa__http_request;

/* Positive, so it never collides with a kaa_err. */
#define KAA__HTTP_INCOMPLETE 1

/*
 * Parses one request from the start of buf[0..len), which need not be
 * NUL-terminated. limits may be NULL (defaults); only max_header_bytes,
 * max_body_bytes and max_headers are used. *out is always overwritten and
 * always safe to pass to kaa__http_request_clear.
 *
 * Returns:
 *   KAA_OK                 a whole request; *consumed = its length (head +
 *                          body), so the caller keeps buf[*consumed..len)
 *                          for the next request
 *   KAA__HTTP_INCOMPLETE   a valid prefix; *consumed = the total length the
 *                          request needs once its head is complete, else 0
 *                          (the caller need not parse again before then)
 *   KAA_ERR_INVAL          malformed; error_status 400
 *   KAA_ERR_TOO_BIG        error_status 413 (Content-Length above the body
 *                          limit), 414 (request line alone over the header
 *                          limit) or 431 (head or header count over limit)
 *   KAA_ERR_PROTOCOL       well-formed but unsupported: 501 for any
 *                          Transfer-Encoding, 505 for a version other than
 *                          HTTP/1.x, 417 for an Expect other than 100-continue
 * On an error out->error_status and out->error_reason are set and nothing
 * is allocated. Errors are reported as soon as a complete line shows them,
 * before the rest of the head has arrived; a request line that cannot
 * become valid (binary data, a TLS handshake) is refused at once.
 * Never allocates on INCOMPLETE or on an error; aborts on out-of-memory.
 */
int kaa__http_parse_request(const char *buf, size_t len, const kaa__http_limits *limits,
			    kaa__http_request *out, size_t *consumed);

/* Frees what the parser allocated and zeroes *req. Accepts NULL. */
void kaa__http_request_clear(kaa__http_request *req);

/* The value of the first header called name (ASCII case-insensitive), or
 * NULL. The result is borrowed from req. */
const char *kaa__http_header(const kaa__http_request *req, const char *name);

/*
 * What a handler fills in. The server hands the handler a zeroed response
 * and takes ownership of body and headers after the handler returns.
 */
typedef struct kaa__http_response {
	int status;               /* 200..599; anything else is answered 500 */
	const char *content_type; /* a literal or static string (read after return); NULL: none */
	char *body;               /* malloc'd or NULL; owned by the server after return */
	size_t body_len;
	char *headers; /* extra header lines; use kaa__http_response_add_header */
	bool close;    /* close the connection after this response */
} kaa__http_response;

/* Sets status, content type and a copy of body[0..len) (replacing any
 * previous body). content_type is borrowed as described above. */
void kaa__http_respond(kaa__http_response *resp, int status, const char *content_type,
		       const void *body, size_t len);

/* Sets status and the body {"error":{"code":"...","message":"..."}} with
 * content type application/json. code and message are copied and escaped
 * as JSON strings; bytes that are not valid UTF-8 become U+FFFD. */
void kaa__http_respond_json_error(kaa__http_response *resp, int status, const char *code,
				  const char *message);

/*
 * Appends "name: value" to the extra headers (ETag, Location,
 * WWW-Authenticate, Cache-Control...); both strings are copied. Returns
 * KAA_OK, or KAA_ERR_INVAL (nothing appended) when name is NULL or not an
 * HTTP token, when value is NULL or holds a control character (CR, LF...),
 * or for the headers the server writes itself: Content-Length,
 * Content-Type, Transfer-Encoding, Connection, Date.
 */
int kaa__http_response_add_header(kaa__http_response *resp, const char *name, const char *value);

/* Runs on a worker thread; see the thread rules above. req is borrowed for
 * the duration of the call. A handler answers HEAD as it answers GET: the
 * server sends the status and headers (Content-Length of the body) and
 * drops the body. Routing, 404 and 405 are the handler's business. */
typedef void (*kaa__http_handler)(const kaa__http_request *req, kaa__http_response *resp, void *ud);

typedef struct kaa__http_server kaa__http_server;

/*
 * Binds bind_host:port and listens at once, so a busy port fails here.
 * bind_host NULL, "" or "*": every address (IPv6 dual-stack, IPv4 if IPv6
 * is unavailable); otherwise a numeric address or a name resolved with
 * getaddrinfo. port 0 picks a free port (see kaa__http_server_port).
 * limits is copied; NULL means defaults. handler and ud are borrowed and
 * must stay valid until kaa__http_server_free returns.
 * Returns:
 *   KAA_ERR_INVAL   port outside 0..65535, handler NULL, a limit out of
 *                   range, or bind_host does not resolve
 *   KAA_ERR_EXISTS  the address is already in use (EADDRINUSE)
 *   KAA_ERR_IO      socket/bind/listen failed otherwise (logged)
 */
int kaa__http_server_new(const char *bind_host, int port, const kaa__http_limits *limits,
			 kaa__http_handler handler, void *ud, kaa__http_server **out);

/*
 * Serves HTTPS instead of HTTP: TLS 1.2 or later with the PEM certificate
 * chain cert_file and its private key key_file (both read now; cert-manager's
 * tls.crt/tls.key work as they are). The handshake runs on the I/O thread
 * inside the first reads of each connection and counts against the read
 * timeout; a client that speaks plain HTTP or fails the handshake is
 * closed without an answer. Call before kaa__http_server_start.
 * Returns KAA_ERR_INVAL (started already, or a NULL file), KAA_ERR_IO (a
 * file is unreadable or the key does not match the certificate; logged).
 */
int kaa__http_server_set_tls(kaa__http_server *s, const char *cert_file, const char *key_file);

/*
 * Starts the I/O thread and the workers; connections queued in the listen
 * backlog before this are served then. Call at most once.
 * Returns KAA_ERR_INVAL if already started, KAA_ERR_IO if a thread could
 * not be created (the server is then stopped but still must be freed).
 */
int kaa__http_server_start(kaa__http_server *s);

/* The port actually bound (useful with port 0). */
int kaa__http_server_port(const kaa__http_server *s);

/* Stops the threads (waiting for running handlers to return), closes the
 * listening socket and every connection, frees. Accepts NULL; safe with
 * or without start. */
void kaa__http_server_free(kaa__http_server *s);

#endif
