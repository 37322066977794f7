/*
 * ops_io.c - the transport adapters of the real ops_server (ops_io.h).
 */
#include "operations/ops_io.h"

typedef Kaa__Endpoint__V1__Frame frame_t;

static int srv_send(void *ud, kaa__session_id sid, const frame_t *f)
{
	return kaa__ops_send(ud, sid, f);
}

static int srv_close(void *ud, kaa__session_id sid, int ws_code)
{
	return kaa__ops_close_code(ud, sid, ws_code);
}

static void srv_established(void *ud, kaa__session_id sid)
{
	kaa__ops_session_set_established(ud, sid);
}

static void srv_set_accepting(void *ud, bool accepting)
{
	kaa__ops_server_set_accepting(ud, accepting);
}

static size_t srv_sessions(void *ud)
{
	return kaa__ops_server_sessions(ud);
}

static int srv_nonce(void *ud, kaa__session_id sid, uint8_t out[32])
{
	return kaa__ops_server_nonce(ud, sid, out);
}

static int srv_client_key(void *ud, kaa__session_id sid, uint8_t out[32])
{
	return kaa__ops_server_client_key(ud, sid, out);
}

kaa__ops_io kaa__opl_io_server(kaa__ops_server *srv)
{
	return (kaa__ops_io){.ud = srv,
			     .send = srv_send,
			     .close = srv_close,
			     .established = srv_established,
			     .set_accepting = srv_set_accepting,
			     .sessions = srv_sessions,
			     .nonce = srv_nonce,
			     .client_key = srv_client_key};
}
