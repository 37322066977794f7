/*
 * fake_servers.h - pieces the SDK tests' in-process fake servers share: a
 * loopback listener, a bootstrap responder that sends every request one
 * fixed answer naming a fake operations port, and the queue of encoded
 * frames a fake operations server writes. Header-only (static inline):
 * each tests/sdk/test_*.c is its own binary linking only libkaa. Test
 * code: a failing system call makes the caller's start-up fail.
 */
#ifndef KAA_TEST_FAKE_SERVERS_H
#define KAA_TEST_FAKE_SERVERS_H

#include "proto/endpoint_codec.h"
#include "base/error.h"

#include <arpa/inet.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A loopback listener; *port gets its port. -1 on failure. */
static inline int fake_listener(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 64) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/* A free loopback port (bound, then released for lws to take). */
static inline int fake_free_port(void)
{
	int port = -1, fd = fake_listener(&port);

	if (fd >= 0)
		close(fd);
	return fd >= 0 ? port : -1;
}

/* ---- frames a fake operations server sends ---- */

typedef struct outframe {
	struct outframe *next;
	size_t len;
	unsigned char buf[]; /* LWS_PRE, then the frame */
} outframe;

/* Encodes f (protocol 1, request_id req) and appends it to *q; false if
 * it could not (the frame is then not sent). */
static inline bool fake_outq_push(outframe **q, Kaa__Endpoint__V1__Frame *f, uint64_t req)
{
	uint8_t *b = NULL;
	size_t l = 0;

	f->protocol_version = 1;
	f->request_id = req;
	if (kaa__frame_encode(f, &b, &l) != KAA_OK)
		return false;
	outframe *o = malloc(sizeof(*o) + LWS_PRE + l);
	if (o) {
		o->next = NULL;
		o->len = l;
		memcpy(o->buf + LWS_PRE, b, l);
		while (*q)
			q = &(*q)->next;
		*q = o;
	}
	free(b);
	return o != NULL;
}

static inline void fake_outq_clear(outframe **q)
{
	while (*q) {
		outframe *o = *q;
		*q = o->next;
		free(o);
	}
}

/* ---- bootstrap responder ---- */

typedef struct fake_boot {
	int fd; /* -1: not running */
	pthread_t thread;
	char answer[512];
} fake_boot;

static inline void *fake_boot_main(void *arg)
{
	fake_boot *b = arg;
	for (;;) {
		int fd = accept(b->fd, NULL, NULL);
		char req[2048];
		size_t got = 0;
		if (fd < 0)
			return NULL; /* the listener was shut down */
		while (got < sizeof(req) - 1) {
			ssize_t n = read(fd, req + got, sizeof(req) - 1 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
			req[got] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		if (write(fd, b->answer, strlen(b->answer)) < 0)
			(void)0;
		close(fd);
	}
}

/* Answers GET /v1/operations with one node at 127.0.0.1:ops_port;
 * hostport gets "127.0.0.1:<bootstrap port>". -1 on failure. */
static inline int fake_boot_start(fake_boot *b, int ops_port, char *hostport, size_t len)
{
	char body[128];
	int port = -1;

	snprintf(body, sizeof(body),
		 "{\"nodes\":[{\"id\":\"fake\",\"host\":\"127.0.0.1\",\"port\":%d,\"weight\":1}]}",
		 ops_port);
	snprintf(b->answer, sizeof(b->answer),
		 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
		 "%zu\r\nConnection: close\r\n\r\n%s",
		 strlen(body), body);
	b->fd = fake_listener(&port);
	if (b->fd < 0)
		return -1;
	snprintf(hostport, len, "127.0.0.1:%d", port);
	if (pthread_create(&b->thread, NULL, fake_boot_main, b) != 0) {
		close(b->fd);
		b->fd = -1;
		return -1;
	}
	return 0;
}

static inline void fake_boot_stop(fake_boot *b)
{
	if (b->fd < 0)
		return;
	shutdown(b->fd, SHUT_RDWR);
	pthread_join(b->thread, NULL);
	close(b->fd);
	b->fd = -1;
}

#endif
