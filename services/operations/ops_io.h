/*
 * ops_io.h - the transport as the operations logic sees it (layer L1 of
 * services/operations; may include ops_server.h and lib/ only).
 *
 * kaa__operations_new with io == NULL starts an ops_server and uses it
 * through kaa__opl_io_server; tests pass their own io to capture the
 * outgoing frames and drive kaa__operations_on_frame/on_close themselves.
 * Every hook may be called from any thread; frames are borrowed.
 */
#ifndef KAA_OPS_IO_H
#define KAA_OPS_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "endpoint.pb-c.h"
#include "operations/ops_server.h"

typedef struct kaa__ops_io {
	void *ud;
	int (*send)(void *ud, kaa__session_id sid, const Kaa__Endpoint__V1__Frame *f);
	/* closes after the queued frames with this WebSocket close code */
	int (*close)(void *ud, kaa__session_id sid, int ws_code);
	void (*established)(void *ud, kaa__session_id sid);
	void (*set_accepting)(void *ud, bool accepting);
	size_t (*sessions)(void *ud);
	/* The session's proof-of-possession nonce (hello_proof.h): KAA_OK, or
	 * an error when none was issued. NULL: this transport issues none
	 * (every Hello proof is then refused). */
	int (*nonce)(void *ud, kaa__session_id sid, uint8_t out[32]);
	/* mTLS: SHA-256 of the client certificate's public key (KAA_OK), or
	 * an error when the session presented none. NULL: no mTLS. */
	int (*client_key)(void *ud, kaa__session_id sid, uint8_t out[32]);
} kaa__ops_io;

/* The io that drives the real transport srv (borrowed: it must outlive
 * every use of the returned hooks). Any thread. */
kaa__ops_io kaa__opl_io_server(kaa__ops_server *srv);

#endif
