/* libkaa events and owners: the duplicate filter (window, eviction), the
 * outbox (bounds, re-send order), event seqs across a state reload, the
 * endpoint access token, the frames of the new requests, the client API's
 * argument checks, and a client against a fake operations server (a
 * libwebsockets server in this process speaking the device protocol). */
#include "cu_main.h"
#include "test_util.h"
#include "proto/endpoint_codec.h"
#include "base/error.h"
#include "kaa/kaa.h"
#include "sdk_events.h"
#include "sdk_internal.h"
#include "fake_servers.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static int setup(void)
{
	return kaa__test_tmpdir(dir, sizeof(dir), "kaa-sdk-events");
}

static int teardown(void)
{
	return kaa__test_rm_tree(dir);
}

/* ---- duplicate filter ------------------------------------------------------ */

static void test_dedup_basic(void)
{
	kaa__dedup *d = NULL;

	CU_ASSERT_EQUAL_FATAL(kaa__dedup_new(0, &d), KAA_OK);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "A", 5), 1);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "A", 5), 0);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "B", 5), 1); /* per source */
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "A", 3), 1); /* late, inside the window */
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "A", 3), 0);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "A", 4), 1);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "A", 6), 1);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "A", 5), 0);
	/* window edges: hi - 1023 is inside, hi - 1024 below */
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "C", 5000), 1);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "C", 5000 - 1023), 1);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "C", 5000 - 1023), 0);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "C", 5000 - 1024), 0);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "C", 1), 0);
	/* a jump past the window forgets the old bits but keeps order */
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "C", 9000), 1);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "C", 8999), 1);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "C", 5000), 0);
	/* seq 0 and the largest seq are ordinary values */
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "D", 0), 1);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "D", 0), 0);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "D", UINT64_MAX), 1);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "D", UINT64_MAX), 0);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "D", UINT64_MAX - 1), 1);
	/* bad keys */
	char big[KAA__DEDUP_KEY_MAX + 2];
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CU_ASSERT_EQUAL(kaa__dedup_check(d, big, 1), KAA_ERR_INVAL);
	big[KAA__DEDUP_KEY_MAX] = '\0';
	CU_ASSERT_EQUAL(kaa__dedup_check(d, big, 1), 1);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, NULL, 1), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "", 1), 1); /* "" is a key like any */
	CU_ASSERT_EQUAL(kaa__dedup_sources(d), 6);
	kaa__dedup_free(d);
	kaa__dedup_free(NULL);
}

/* Against a reference model (every seq seen, per source): new iff above
 * the highest or unseen inside the window. Exercises every shift width. */
static void test_dedup_model(void)
{
	enum { RANGE = 400000, SOURCES = 3 };
	kaa__dedup *d = NULL;
	unsigned char *seen[SOURCES];
	uint64_t hi[SOURCES] = {0}, rng = 0x9E3779B97F4A7C15ull;
	bool any[SOURCES] = {false};
	int mismatches = 0, news = 0, dups = 0;

	CU_ASSERT_EQUAL_FATAL(kaa__dedup_new(0, &d), KAA_OK);
	for (int s = 0; s < SOURCES; s++)
		seen[s] = calloc(RANGE, 1);
	for (int i = 0; i < 300000; i++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		int s = (int)(rng % SOURCES);
		uint64_t r = rng >> 8, seq;
		if (!any[s] || r % 50 == 0)
			seq = hi[s] + 1 + (r >> 8) % 1500; /* a jump, sometimes past the window */
		else if (r % 3 == 0)
			seq = hi[s] + 1 + (r >> 8) % 70;
		else
			seq = hi[s] > (r >> 8) % 1100 ? hi[s] - (r >> 8) % 1100 : 0;
		if (seq >= RANGE)
			break;
		int want = !any[s] || seq > hi[s] ||
			   (hi[s] - seq < KAA__DEDUP_WINDOW && !seen[s][seq]);
		char key[8];
		snprintf(key, sizeof(key), "s%d", s);
		int got = kaa__dedup_check(d, key, seq);
		if (got != want && mismatches++ < 5)
			fprintf(stderr, "source %d seq %llu hi %llu: got %d want %d\n", s,
				(unsigned long long)seq, (unsigned long long)hi[s], got, want);
		if (want) {
			seen[s][seq] = 1;
			if (!any[s] || seq > hi[s])
				hi[s] = seq;
			any[s] = true;
			news++;
		} else {
			dups++;
		}
	}
	CU_ASSERT_EQUAL(mismatches, 0);
	CU_ASSERT(news > 1000 && dups > 1000); /* both paths were taken */
	for (int s = 0; s < SOURCES; s++)
		free(seen[s]);
	kaa__dedup_free(d);
}

static void test_dedup_eviction(void)
{
	kaa__dedup *d = NULL;
	char key[32];

	CU_ASSERT_EQUAL_FATAL(kaa__dedup_new(3, &d), KAA_OK);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "a", 10), 1);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "b", 10), 1);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "c", 10), 1);
	/* touching a makes b the least recently seen */
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "a", 10), 0);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "d", 10), 1);
	CU_ASSERT_EQUAL(kaa__dedup_sources(d), 3);
	CU_ASSERT_EQUAL(kaa__dedup_evictions(d), 1);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "a", 10), 0); /* kept */
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "d", 10), 0);
	/* b was forgotten: its old seq counts as new (documented) and evicts c */
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "b", 10), 1);
	CU_ASSERT_EQUAL(kaa__dedup_evictions(d), 2);
	CU_ASSERT_EQUAL(kaa__dedup_check(d, "c", 10), 1);
	kaa__dedup_free(d);

	/* the default bound, with the bucket array growing on the way */
	CU_ASSERT_EQUAL_FATAL(kaa__dedup_new(0, &d), KAA_OK);
	for (int i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "source-%d", i);
		CU_ASSERT_EQUAL(kaa__dedup_check(d, key, 1), 1);
	}
	CU_ASSERT_EQUAL(kaa__dedup_sources(d), 4096);
	CU_ASSERT_EQUAL(kaa__dedup_evictions(d), 10000 - 4096);
	int dup = 0;
	for (int i = 10000 - 4096; i < 10000; i++) {
		snprintf(key, sizeof(key), "source-%d", i);
		dup += kaa__dedup_check(d, key, 1) == 0;
	}
	CU_ASSERT_EQUAL(dup, 4096); /* the newest 4096 are all remembered */
	kaa__dedup_free(d);
}

/* ---- outbox ------------------------------------------------------------------ */

static void test_outbox(void)
{
	kaa__outbox ob;
	kaa__ob_event *e;

	kaa__outbox_init(&ob, 3);
	CU_ASSERT_EQUAL(kaa__outbox_push(&ob, 1, "a.B", NULL, "{}"), KAA_OK);
	CU_ASSERT_EQUAL(kaa__outbox_push(&ob, 2, "a.B", "tgt", "[1]"), KAA_OK);
	CU_ASSERT_EQUAL(kaa__outbox_push(&ob, 2, "a.B", NULL, "{}"),
			KAA_ERR_INVAL); /* not increasing */
	CU_ASSERT_EQUAL(kaa__outbox_push(&ob, 5, NULL, NULL, "{}"), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__outbox_push(&ob, 5, "a.C", NULL, "{\"x\":1}"), KAA_OK);
	CU_ASSERT_EQUAL(kaa__outbox_push(&ob, 6, "a.B", NULL, "{}"), KAA_ERR_TOO_BIG); /* full */
	CU_ASSERT_EQUAL(ob.n, 3);

	/* sent in seq order */
	e = kaa__outbox_next_unsent(&ob);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->seq, 1);
	CU_ASSERT_STRING_EQUAL(e->target, "");
	kaa__outbox_mark_sent(&ob, 100, 10);
	e = kaa__outbox_next_unsent(&ob);
	CU_ASSERT_EQUAL(e->seq, 2);
	CU_ASSERT_STRING_EQUAL(e->target, "tgt");
	CU_ASSERT_STRING_EQUAL(e->body, "[1]");
	kaa__outbox_mark_sent(&ob, 101, 10);
	kaa__outbox_mark_sent(&ob, 102, 10);
	CU_ASSERT_PTR_NULL(kaa__outbox_next_unsent(&ob));
	CU_ASSERT(kaa__outbox_stale(&ob, 11));
	CU_ASSERT(!kaa__outbox_stale(&ob, 10));
	CU_ASSERT_EQUAL(kaa__outbox_find_req(&ob, 101), 1);
	CU_ASSERT_EQUAL(kaa__outbox_find_req(&ob, 0), -1);
	CU_ASSERT_EQUAL(kaa__outbox_find_seq(&ob, 5), 2);
	CU_ASSERT_EQUAL(kaa__outbox_find_seq(&ob, 3), -1);

	/* an ack in the middle frees a slot */
	kaa__outbox_remove(&ob, 1);
	CU_ASSERT_EQUAL(ob.n, 2);
	CU_ASSERT_EQUAL(ob.nsent, 2);
	CU_ASSERT_EQUAL(kaa__outbox_find_req(&ob, 102), 1);
	CU_ASSERT_EQUAL(kaa__outbox_push(&ob, 7, "a.D", NULL, "{}"), KAA_OK);
	e = kaa__outbox_next_unsent(&ob);
	CU_ASSERT_EQUAL(e->seq, 7);
	kaa__outbox_mark_sent(&ob, 103, 10);

	/* a reconnect: everything unacknowledged again, oldest first */
	kaa__outbox_unsend_from(&ob, 0);
	CU_ASSERT_EQUAL(ob.nsent, 0);
	CU_ASSERT_EQUAL(kaa__outbox_find_req(&ob, 100), -1);
	uint64_t order[3];
	for (int i = 0; i < 3; i++) {
		e = kaa__outbox_next_unsent(&ob);
		CU_ASSERT_PTR_NOT_NULL_FATAL(e);
		order[i] = e->seq;
		kaa__outbox_mark_sent(&ob, 200 + (uint64_t)i, 20);
	}
	CU_ASSERT_EQUAL(order[0], 1);
	CU_ASSERT_EQUAL(order[1], 5);
	CU_ASSERT_EQUAL(order[2], 7);
	/* a retry from the middle re-sends that one and the later ones */
	kaa__outbox_unsend_from(&ob, 1);
	CU_ASSERT_EQUAL(ob.nsent, 1);
	CU_ASSERT_EQUAL(kaa__outbox_next_unsent(&ob)->seq, 5);
	CU_ASSERT_EQUAL(kaa__outbox_find_req(&ob, 200), 0);
	CU_ASSERT_EQUAL(kaa__outbox_find_req(&ob, 201), -1);
	/* removing an unsent entry keeps the sent prefix */
	kaa__outbox_remove(&ob, 2);
	CU_ASSERT_EQUAL(ob.nsent, 1);
	kaa__outbox_remove(&ob, 0);
	CU_ASSERT_EQUAL(ob.nsent, 0);
	CU_ASSERT_EQUAL(ob.n, 1);
	kaa__outbox_remove(&ob, 5); /* out of range: nothing */
	CU_ASSERT_EQUAL(ob.n, 1);
	kaa__outbox_clear(&ob);
	CU_ASSERT_EQUAL(ob.n, 0);

	/* the default bound */
	kaa__outbox_init(&ob, 0);
	int rc = KAA_OK, pushed = 0;
	for (uint64_t s = 1; rc == KAA_OK; s++)
		if ((rc = kaa__outbox_push(&ob, s, "f", NULL, "1")) == KAA_OK)
			pushed++;
	CU_ASSERT_EQUAL(rc, KAA_ERR_TOO_BIG);
	CU_ASSERT_EQUAL(pushed, 1000);
	kaa__outbox_clear(&ob);
}

/* ---- seqs and tokens in the state file ----------------------------------------- */

static void test_seq_persistence(void)
{
	kaa__sdk_state st = {0};
	char sub[300], path[400];
	uint64_t seq = 0, last = 0;
	struct stat sb;

	snprintf(sub, sizeof(sub), "%s/seq", dir);
	CU_ASSERT_EQUAL_FATAL(kaa__sdk_mkdirs(sub), KAA_OK);
	snprintf(path, sizeof(path), "%s/state", sub);
	CU_ASSERT_EQUAL(kaa__sdk_state_load(sub, &st), KAA_OK);
	CU_ASSERT_EQUAL(kaa__sdk_state_take_event_seq(sub, &st, false, &seq), KAA_OK);
	CU_ASSERT_EQUAL(seq, 1);
	CU_ASSERT_EQUAL(st.event_seq_reserved, 1 + KAA__EVENT_SEQ_BLOCK);
	CU_ASSERT_EQUAL(stat(path, &sb), 0); /* the reservation is on disk first */
	/* inside the block the file is not written */
	unlink(path);
	for (int i = 0; i < KAA__EVENT_SEQ_BLOCK - 1; i++) {
		CU_ASSERT_EQUAL(kaa__sdk_state_take_event_seq(sub, &st, false, &seq), KAA_OK);
		CU_ASSERT_EQUAL(seq, (uint64_t)i + 2);
	}
	CU_ASSERT_NOT_EQUAL(stat(path, &sb), 0);
	CU_ASSERT_EQUAL(kaa__sdk_state_take_event_seq(sub, &st, false, &seq), KAA_OK);
	CU_ASSERT_EQUAL(seq, 1 + KAA__EVENT_SEQ_BLOCK);
	CU_ASSERT_EQUAL(stat(path, &sb), 0);
	last = seq;
	CU_ASSERT_EQUAL(kaa__sdk_state_take_event_seq(sub, &st, false, &seq), KAA_OK);
	last = seq;
	kaa__sdk_state_clear(&st);

	/* a restart continues above everything handed out */
	CU_ASSERT_EQUAL(kaa__sdk_state_load(sub, &st), KAA_OK);
	CU_ASSERT_EQUAL(kaa__sdk_state_take_event_seq(sub, &st, true, &seq), KAA_OK);
	CU_ASSERT(seq > last);
	uint64_t after = seq;
	kaa__sdk_state_clear(&st);
	CU_ASSERT_EQUAL(kaa__sdk_state_load(sub, &st), KAA_OK);
	CU_ASSERT_EQUAL(kaa__sdk_state_take_event_seq(sub, &st, true, &seq), KAA_OK);
	CU_ASSERT(seq > after);
	kaa__sdk_state_clear(&st);

	/* a state directory that cannot be written: no seq is handed out */
	snprintf(sub, sizeof(sub), "%s/absent/deeper", dir);
	CU_ASSERT_EQUAL(kaa__sdk_state_load(sub, &st), KAA_OK);
	CU_ASSERT_EQUAL(kaa__sdk_state_take_event_seq(sub, &st, false, &seq), KAA_ERR_IO);
	CU_ASSERT_EQUAL(st.event_seq_reserved, 0);
	kaa__sdk_state_clear(&st);
}

static void test_access_token(void)
{
	char a[44], b[44];
	kaa__sdk_state st = {0};
	char sub[300];

	CU_ASSERT_EQUAL(kaa__sdk_new_access_token(a), KAA_OK);
	CU_ASSERT_EQUAL(kaa__sdk_new_access_token(b), KAA_OK);
	CU_ASSERT_EQUAL(strlen(a), 43);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	CU_ASSERT_EQUAL(
		strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
	/* kept in the state file */
	snprintf(sub, sizeof(sub), "%s/tok", dir);
	CU_ASSERT_EQUAL_FATAL(kaa__sdk_mkdirs(sub), KAA_OK);
	strcpy(st.endpoint_access_token, a);
	st.event_seq_reserved = 77;
	CU_ASSERT_EQUAL(kaa__sdk_state_save(sub, &st, false), KAA_OK);
	kaa__sdk_state_clear(&st);
	CU_ASSERT_EQUAL(kaa__sdk_state_load(sub, &st), KAA_OK);
	CU_ASSERT_STRING_EQUAL(st.endpoint_access_token, a);
	CU_ASSERT_EQUAL(st.event_seq_reserved, 77);
	CU_ASSERT_EQUAL(st.event_seq_next, 77);
	kaa__sdk_state_clear(&st);
}

/* ---- frames -------------------------------------------------------------------- */

static Kaa__Endpoint__V1__Frame *decode(int rc, uint8_t **bufp, size_t *lenp)
{
	Kaa__Endpoint__V1__Frame *f = NULL;
	kaa__frame_error fe;

	CU_ASSERT_EQUAL(rc, KAA_OK);
	if (rc != KAA_OK)
		return NULL;
	rc = kaa__frame_decode(*bufp, *lenp, NULL, &f, &fe);
	CU_ASSERT_EQUAL(rc, KAA_OK);
	free(*bufp);
	*bufp = NULL;
	return f;
}

static void test_frames(void)
{
	uint8_t *b = NULL, pub[91];
	size_t l = 0;
	Kaa__Endpoint__V1__Frame *f;

	memset(pub, 3, sizeof(pub));
	f = decode(
		kaa__sdk_frame_hello_token(1, "app", pub, sizeof(pub), NULL, NULL, "tok-0", &b, &l),
		&b, &l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL_FATAL(f->body_case, KAA__ENDPOINT__V1__FRAME__BODY_HELLO);
	CU_ASSERT_STRING_EQUAL(f->hello->endpoint_access_token, "tok-0");
	kaa__frame_free(f);

	f = decode(kaa__sdk_frame_event(2, "org.Temp", "", "{\"t\":1}", 42, &b, &l), &b, &l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(f->request_id, 2);
	CU_ASSERT_EQUAL_FATAL(f->body_case, KAA__ENDPOINT__V1__FRAME__BODY_EVENT);
	CU_ASSERT_STRING_EQUAL(f->event->event_class_fqn, "org.Temp");
	CU_ASSERT_STRING_EQUAL(f->event->target_endpoint_key_hash, "");
	CU_ASSERT_STRING_EQUAL(f->event->body_json, "{\"t\":1}");
	CU_ASSERT_EQUAL(f->event->seq, 42);
	kaa__frame_free(f);

	f = decode(kaa__sdk_frame_event_ack(3, 9, "SRC", &b, &l), &b, &l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL_FATAL(f->body_case, KAA__ENDPOINT__V1__FRAME__BODY_EVENT_ACK);
	CU_ASSERT_EQUAL(f->event_ack->seq, 9);
	CU_ASSERT_STRING_EQUAL(f->event_ack->source_endpoint_key_hash, "SRC");
	kaa__frame_free(f);

	char *fqns[2] = {"a.B", "a.C"};
	f = decode(kaa__sdk_frame_event_listeners(4, fqns, 2, &b, &l), &b, &l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL_FATAL(f->body_case, KAA__ENDPOINT__V1__FRAME__BODY_EVENT_LISTENERS_REQUEST);
	CU_ASSERT_EQUAL_FATAL(f->event_listeners_request->n_event_class_fqns, 2);
	CU_ASSERT_STRING_EQUAL(f->event_listeners_request->event_class_fqns[1], "a.C");
	kaa__frame_free(f);
	CU_ASSERT_EQUAL(kaa__sdk_frame_event_listeners(4, fqns, 0, &b, &l), KAA_ERR_INVAL);

	f = decode(kaa__sdk_frame_owner_attach(5, "alice", "secret", NULL, &b, &l), &b, &l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL_FATAL(f->body_case, KAA__ENDPOINT__V1__FRAME__BODY_OWNER_ATTACH_REQUEST);
	CU_ASSERT_EQUAL_FATAL(f->owner_attach_request->credential_case,
			      KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__CREDENTIAL_OWNER);
	CU_ASSERT_STRING_EQUAL(f->owner_attach_request->owner->owner_external_id, "alice");
	CU_ASSERT_STRING_EQUAL(f->owner_attach_request->owner->token, "secret");
	CU_ASSERT_STRING_EQUAL(f->owner_attach_request->owner->verifier_token, "");
	kaa__frame_free(f);

	f = decode(kaa__sdk_frame_endpoint_attach(6, "ep-token", &b, &l), &b, &l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL_FATAL(
		f->owner_attach_request->credential_case,
		KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__CREDENTIAL_ENDPOINT_ACCESS_TOKEN);
	CU_ASSERT_STRING_EQUAL(f->owner_attach_request->endpoint_access_token, "ep-token");
	kaa__frame_free(f);

	f = decode(kaa__sdk_frame_owner_detach(7, NULL, &b, &l), &b, &l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL_FATAL(f->body_case, KAA__ENDPOINT__V1__FRAME__BODY_OWNER_DETACH);
	CU_ASSERT_STRING_EQUAL(f->owner_detach->endpoint_key_hash, "");
	kaa__frame_free(f);
}

/* ---- client API without a server ------------------------------------------------ */

static void test_client_api(void)
{
	kaa_runtime *rt = NULL;
	kaa_client *c = NULL;
	const char *boot[] = {"127.0.0.1:1"};
	char sub[300], tok[64];
	kaa_client_options o = {.application_token = "t",
				.bootstrap_servers = boot,
				.bootstrap_count = 1,
				.state_dir = sub,
				.event_outbox_max = 3};
	kaa_client_stats st;
	uint64_t seq = 0, s1 = 0;

	snprintf(sub, sizeof(sub), "%s/client", dir);
	CU_ASSERT_EQUAL_FATAL(kaa_runtime_new(&rt), KAA_OK);
	o.endpoint_access_token = "";
	CU_ASSERT_EQUAL(kaa_client_new(rt, &o, &c), KAA_ERR_INVAL);
	o.endpoint_access_token = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa_client_new(rt, &o, &c), KAA_OK);
	/* a generated token, the same after a restart */
	const char *t = kaa_client_endpoint_access_token(c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(strlen(t), 43);
	snprintf(tok, sizeof(tok), "%s", t);
	CU_ASSERT_PTR_NULL(kaa_client_endpoint_access_token(NULL));

	CU_ASSERT_EQUAL(kaa_client_send_event(c, "a.B", NULL, "{}", &s1), KAA_OK);
	CU_ASSERT_EQUAL(kaa_client_send_event(c, "a.B", "tgt", "[1,2]", &seq), KAA_OK);
	CU_ASSERT_EQUAL(seq, s1 + 1);
	CU_ASSERT_EQUAL(kaa_client_send_event(c, "a.B", NULL, "{", &seq), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(seq, 0);
	CU_ASSERT_EQUAL(kaa_client_send_event(c, "", NULL, "{}", NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa_client_send_event(c, NULL, NULL, "{}", NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa_client_send_event(c, "a.B", NULL, NULL, NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa_client_send_event(NULL, "a.B", NULL, "{}", NULL), KAA_ERR_INVAL);
	char *big = malloc(KAA_EVENT_BODY_MAX + 8);
	memset(big, ' ', KAA_EVENT_BODY_MAX + 7);
	big[0] = '1';
	big[KAA_EVENT_BODY_MAX + 7] = '\0';
	CU_ASSERT_EQUAL(kaa_client_send_event(c, "a.B", NULL, big, NULL), KAA_ERR_TOO_BIG);
	/* within the body bound but, with the FQN, over the frame limit */
	big[KAA_EVENT_BODY_MAX] = '\0';
	CU_ASSERT_EQUAL(kaa_client_send_event(c, "a.B", NULL, big, NULL), KAA_ERR_TOO_BIG);
	free(big);
	char fqn[KAA_EVENT_FQN_MAX + 2];
	memset(fqn, 'f', sizeof(fqn) - 1);
	fqn[sizeof(fqn) - 1] = '\0';
	CU_ASSERT_EQUAL(kaa_client_send_event(c, fqn, NULL, "{}", NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa_client_send_event(c, "a.B", fqn, "{}", NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa_client_send_event(c, "a.B", NULL, "3", &seq), KAA_OK);
	/* the outbox holds 3: the fourth is refused, nothing queued */
	CU_ASSERT_EQUAL(kaa_client_send_event(c, "a.B", NULL, "4", NULL), KAA_ERR_TOO_BIG);
	CU_ASSERT_EQUAL(kaa_client_get_stats(c, &st), KAA_OK);
	CU_ASSERT_EQUAL(st.events_outbox, 3);
	CU_ASSERT_EQUAL(st.events_queued, 3);
	CU_ASSERT_EQUAL(st.events_sent, 0);

	/* owner requests */
	CU_ASSERT_EQUAL(kaa_client_attach_owner(c, "alice", "tok", NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa_client_attach_owner(c, "", "tok", NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa_client_attach_owner(c, "alice", NULL, NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa_client_attach_owner(c, fqn, "tok", NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa_client_attach_endpoint(c, ""), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa_client_attach_endpoint(c, "tok-1"), KAA_OK);
	CU_ASSERT_EQUAL(kaa_client_detach(c, NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa_client_detach(c, fqn), KAA_ERR_INVAL);
	const char *fq[] = {"a.B", "a.C"};
	CU_ASSERT_EQUAL(kaa_client_find_listeners(c, fq, 2), KAA_OK);
	CU_ASSERT_EQUAL(kaa_client_find_listeners(c, fq, 0), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa_client_find_listeners(c, NULL, 1), KAA_ERR_INVAL);
	const char *many[KAA_EVENT_FQNS_MAX + 1];
	for (size_t i = 0; i <= KAA_EVENT_FQNS_MAX; i++)
		many[i] = "x";
	CU_ASSERT_EQUAL(kaa_client_find_listeners(c, many, KAA_EVENT_FQNS_MAX + 1), KAA_ERR_INVAL);
	/* 1024 FQNs of 256 bytes do not fit one frame */
	memset(fqn, 'f', KAA_EVENT_FQN_MAX);
	fqn[KAA_EVENT_FQN_MAX] = '\0';
	for (size_t i = 0; i < KAA_EVENT_FQNS_MAX; i++)
		many[i] = fqn;
	CU_ASSERT_EQUAL(kaa_client_find_listeners(c, many, KAA_EVENT_FQNS_MAX), KAA_ERR_TOO_BIG);
	int rc = KAA_OK, n = 4;
	while (rc == KAA_OK && n < 1000)
		if ((rc = kaa_client_detach(c, "x")) == KAA_OK)
			n++;
	CU_ASSERT_EQUAL(rc, KAA_ERR_TOO_BIG);
	CU_ASSERT_EQUAL(n, KAA_OWNER_REQUESTS_MAX);
	kaa_client_free(c);

	/* a restart: the same token, seqs continue above the old ones */
	CU_ASSERT_EQUAL_FATAL(kaa_client_new(rt, &o, &c), KAA_OK);
	CU_ASSERT_STRING_EQUAL(kaa_client_endpoint_access_token(c), tok);
	CU_ASSERT_EQUAL(kaa_client_send_event(c, "a.B", NULL, "{}", &seq), KAA_OK);
	CU_ASSERT(seq > s1 + 2);
	kaa_client_free(c);
	/* a token from the options wins */
	o.endpoint_access_token = "mine-7";
	CU_ASSERT_EQUAL_FATAL(kaa_client_new(rt, &o, &c), KAA_OK);
	CU_ASSERT_STRING_EQUAL(kaa_client_endpoint_access_token(c), "mine-7");
	kaa_client_free(c);
	kaa_runtime_free(rt);
}

/* ---- a client against a fake operations server ------------------------------------
 * The fake is a libwebsockets server on its own thread that answers like
 * the operations service would (docs/protocol.md), plus a one-shot-per-
 * connection HTTP responder for the bootstrap request. The test drives it
 * through srv (mutex) and polls for conditions with a deadline. */

#define MAXLOG 256

static struct {
	pthread_mutex_t mu;
	struct lws_context *ctx;
	pthread_t thread;
	volatile int stop;
	struct lws *wsi;
	outframe *outq;
	bool close_req;
	unsigned char rx[70000];
	size_t rxlen;
	/* what the device sent */
	int hellos;
	char hello_token[128];
	int ack_from_session; /* answer events from this Hello on (1 = always) */
	size_t nev;
	struct {
		int session;
		uint64_t seq;
		char fqn[64];
	} ev[MAXLOG];
	size_t nacks;
	struct {
		uint64_t seq;
		char source[32];
	} acks[MAXLOG];
	int attach_reqs, detach_reqs, listener_reqs, busy_seen;
	fake_boot boot;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER, .boot = {.fd = -1}};

/* srv.mu held. Takes the frame f (encoded here). */
static void srv_queue(Kaa__Endpoint__V1__Frame *f, uint64_t req)
{
	if (fake_outq_push(&srv.outq, f, req) && srv.wsi)
		lws_callback_on_writable(srv.wsi);
}

static void srv_error(uint64_t req, Kaa__Endpoint__V1__ErrorCode code, const char *msg)
{
	Kaa__Endpoint__V1__Frame f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Error e = KAA__ENDPOINT__V1__ERROR__INIT;

	e.code = code;
	e.message = (char *)msg;
	e.request_id = req;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_ERROR;
	f.error = &e;
	srv_queue(&f, req);
}

/* srv.mu held: one frame from the device. */
static void srv_handle(const Kaa__Endpoint__V1__Frame *in)
{
	Kaa__Endpoint__V1__Frame f = KAA__ENDPOINT__V1__FRAME__INIT;
	uint64_t req = in->request_id;

	switch (in->body_case) {
	case KAA__ENDPOINT__V1__FRAME__BODY_HELLO: {
		Kaa__Endpoint__V1__HelloAck a = KAA__ENDPOINT__V1__HELLO_ACK__INIT;
		Kaa__Endpoint__V1__Limits lim = KAA__ENDPOINT__V1__LIMITS__INIT;
		char sid[32];
		srv.hellos++;
		snprintf(srv.hello_token, sizeof(srv.hello_token), "%s",
			 in->hello->endpoint_access_token);
		snprintf(sid, sizeof(sid), "fake.%d", srv.hellos);
		lim.max_frame_bytes = 65536;
		lim.idle_timeout_ms = 120000;
		a.endpoint_key_hash = "EKH-test";
		a.session_id = sid;
		a.limits = &lim;
		a.registered = srv.hellos == 1;
		f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_HELLO_ACK;
		f.hello_ack = &a;
		srv_queue(&f, req);
		break;
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_EVENT: {
		if (srv.nev < MAXLOG) {
			srv.ev[srv.nev].session = srv.hellos;
			srv.ev[srv.nev].seq = in->event->seq;
			snprintf(srv.ev[srv.nev].fqn, sizeof(srv.ev[0].fqn), "%s",
				 in->event->event_class_fqn);
			srv.nev++;
		}
		if (srv.hellos < srv.ack_from_session)
			break; /* lost on the way: the device must send it again */
		if (strcmp(in->event->event_class_fqn, "busy.Fqn") == 0 && srv.busy_seen++ == 0) {
			Kaa__Endpoint__V1__Error e = KAA__ENDPOINT__V1__ERROR__INIT;
			e.code = KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_OVERLOADED;
			e.message = "busy";
			e.retry_after_ms = 100;
			f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_ERROR;
			f.error = &e;
			srv_queue(&f, req);
			break;
		}
		if (strcmp(in->event->event_class_fqn, "bad.Fqn") == 0) {
			srv_error(req, KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_INVALID_EVENT,
				  "does not match the schema");
			break;
		}
		Kaa__Endpoint__V1__EventAck a = KAA__ENDPOINT__V1__EVENT_ACK__INIT;
		a.seq = in->event->seq;
		f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_EVENT_ACK;
		f.event_ack = &a;
		srv_queue(&f, req);
		break;
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_EVENT_ACK:
		if (srv.nacks < MAXLOG) {
			srv.acks[srv.nacks].seq = in->event_ack->seq;
			snprintf(srv.acks[srv.nacks].source, sizeof(srv.acks[0].source), "%s",
				 in->event_ack->source_endpoint_key_hash);
			srv.nacks++;
		}
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_OWNER_ATTACH_REQUEST: {
		const Kaa__Endpoint__V1__OwnerAttachRequest *r = in->owner_attach_request;
		srv.attach_reqs++;
		if (r->credential_case !=
			    KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__CREDENTIAL_OWNER ||
		    strcmp(r->owner->token, "good") != 0) {
			srv_error(req, KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_INVALID_TOKEN,
				  "no such token");
			break;
		}
		Kaa__Endpoint__V1__OwnerAttachResponse a =
			KAA__ENDPOINT__V1__OWNER_ATTACH_RESPONSE__INIT;
		a.result = KAA__ENDPOINT__V1__ATTACH_RESULT__ATTACH_RESULT_SUCCESS;
		a.owner_id = "owner-1";
		a.endpoint_key_hash = "EKH-test";
		f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_OWNER_ATTACH_RESPONSE;
		f.owner_attach_response = &a;
		srv_queue(&f, req);
		break;
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_OWNER_DETACH: {
		Kaa__Endpoint__V1__Ack a = KAA__ENDPOINT__V1__ACK__INIT;
		srv.detach_reqs++;
		f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_ACK;
		f.ack = &a;
		srv_queue(&f, req);
		break;
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_EVENT_LISTENERS_REQUEST: {
		Kaa__Endpoint__V1__EventListenersResponse a =
			KAA__ENDPOINT__V1__EVENT_LISTENERS_RESPONSE__INIT;
		char *keys[2] = {"K1", "K2"};
		srv.listener_reqs++;
		a.n_endpoint_key_hashes = 2;
		a.endpoint_key_hashes = keys;
		f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_EVENT_LISTENERS_RESPONSE;
		f.event_listeners_response = &a;
		srv_queue(&f, req);
		break;
	}
	default: break; /* config sync, pings: not needed here */
	}
}

static int srv_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		  size_t len)
{
	int ret = 0;

	(void)user;
	pthread_mutex_lock(&srv.mu);
	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (srv.wsi && (srv.outq || srv.close_req))
			lws_callback_on_writable(srv.wsi);
		break;
	case LWS_CALLBACK_ESTABLISHED:
		srv.wsi = wsi;
		srv.rxlen = 0;
		break;
	case LWS_CALLBACK_CLOSED:
		if (srv.wsi == wsi) {
			srv.wsi = NULL;
			while (srv.outq) {
				outframe *o = srv.outq;
				srv.outq = o->next;
				free(o);
			}
		}
		break;
	case LWS_CALLBACK_RECEIVE:
		if (srv.rxlen + len <= sizeof(srv.rx)) {
			memcpy(srv.rx + srv.rxlen, in, len);
			srv.rxlen += len;
		}
		if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
			Kaa__Endpoint__V1__Frame *f = NULL;
			if (kaa__frame_decode(srv.rx, srv.rxlen, NULL, &f, NULL) == KAA_OK)
				srv_handle(f);
			kaa__frame_free(f);
			srv.rxlen = 0;
		}
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (wsi != srv.wsi)
			break;
		if (srv.close_req) {
			srv.close_req = false;
			ret = -1;
			break;
		}
		if (srv.outq) {
			outframe *o = srv.outq;
			srv.outq = o->next;
			int w = lws_write(wsi, o->buf + LWS_PRE, o->len, LWS_WRITE_BINARY);
			free(o);
			if (w < 0)
				ret = -1;
			else if (srv.outq)
				lws_callback_on_writable(wsi);
		}
		break;
	default: break;
	}
	pthread_mutex_unlock(&srv.mu);
	return ret;
}

static const struct lws_protocols srv_protocols[] = {
	{"http", lws_callback_http_dummy, 0, 0, 0, NULL, 0},
	{"kaa.v1", srv_cb, 0, 70000, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *srv_thread(void *arg)
{
	(void)arg;
	while (!srv.stop)
		if (lws_service(srv.ctx, 0) < 0)
			break;
	return NULL;
}

static int srv_start(char *boot_hostport, size_t len)
{
	struct lws_context_creation_info info;
	int port = fake_free_port();

	if (port < 0)
		return -1;
	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = "127.0.0.1";
	info.protocols = srv_protocols;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	srv.ctx = lws_create_context(&info);
	if (!srv.ctx || fake_boot_start(&srv.boot, port, boot_hostport, len) != 0)
		return -1;
	pthread_create(&srv.thread, NULL, srv_thread, NULL);
	return 0;
}

static void srv_stop(void)
{
	srv.stop = 1;
	if (srv.ctx) {
		lws_cancel_service(srv.ctx);
		pthread_join(srv.thread, NULL);
		lws_context_destroy(srv.ctx);
		srv.ctx = NULL;
	}
	fake_boot_stop(&srv.boot);
	fake_outq_clear(&srv.outq);
}

/* Server -> device frames, from the test thread. */
static void srv_push_event(const char *fqn, const char *source, uint64_t seq, const char *body)
{
	Kaa__Endpoint__V1__Frame f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Event e = KAA__ENDPOINT__V1__EVENT__INIT;

	e.event_class_fqn = (char *)fqn;
	e.source_endpoint_key_hash = (char *)source;
	e.seq = seq;
	e.body_json = (char *)body;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_EVENT;
	f.event = &e;
	pthread_mutex_lock(&srv.mu);
	srv_queue(&f, 9000 + seq);
	pthread_mutex_unlock(&srv.mu);
	lws_cancel_service(srv.ctx);
}

static void srv_push_notifications(void)
{
	Kaa__Endpoint__V1__Frame f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__AttachNotification an = KAA__ENDPOINT__V1__ATTACH_NOTIFICATION__INIT;
	Kaa__Endpoint__V1__DetachNotification dn = KAA__ENDPOINT__V1__DETACH_NOTIFICATION__INIT;

	an.owner_id = "owner-2";
	an.endpoint_key_hash = "BY-1";
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_ATTACH_NOTIFICATION;
	f.attach_notification = &an;
	pthread_mutex_lock(&srv.mu);
	srv_queue(&f, 0);
	dn.endpoint_key_hash = "BY-2";
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_DETACH_NOTIFICATION;
	f.detach_notification = &dn;
	srv_queue(&f, 0);
	pthread_mutex_unlock(&srv.mu);
	lws_cancel_service(srv.ctx);
}

static void srv_drop(void)
{
	pthread_mutex_lock(&srv.mu);
	srv.close_req = true;
	pthread_mutex_unlock(&srv.mu);
	lws_cancel_service(srv.ctx);
}

/* ---- what the client's callbacks saw (guarded by seen.mu) ---- */

static struct {
	pthread_mutex_t mu;
	int attach_ok, attach_fail, attach_fail_code, ep_attach_fail, ep_attach_code;
	char owner_id[64], ep_token[64];
	int detach_ok;
	char detach_key[64];
	int attach_notes, detach_notes;
	char note_owner[64], note_by[64];
	size_t nevents;
	struct {
		uint64_t seq;
		char source[32];
	} events[MAXLOG];
	int results_ok, results_fail, fail_code;
	uint64_t fail_seq;
	int listeners;
	size_t listener_n, listener_fqns;
	char listener0[16];
} seen = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void cb_attach(kaa_client *c, const char *token, bool ok, int code, const char *reason,
		      const char *owner_id, const char *ekh, void *user)
{
	(void)c, (void)reason, (void)ekh, (void)user;
	pthread_mutex_lock(&seen.mu);
	if (token) {
		seen.ep_attach_fail += !ok;
		seen.ep_attach_code = code;
		snprintf(seen.ep_token, sizeof(seen.ep_token), "%s", token);
	} else if (ok) {
		seen.attach_ok++;
		snprintf(seen.owner_id, sizeof(seen.owner_id), "%s", owner_id);
	} else {
		seen.attach_fail++;
		seen.attach_fail_code = code;
	}
	pthread_mutex_unlock(&seen.mu);
}

static void cb_detach(kaa_client *c, const char *key, bool ok, int code, const char *msg,
		      void *user)
{
	(void)c, (void)code, (void)msg, (void)user;
	pthread_mutex_lock(&seen.mu);
	seen.detach_ok += ok;
	snprintf(seen.detach_key, sizeof(seen.detach_key), "%s", key);
	pthread_mutex_unlock(&seen.mu);
}

static void cb_attach_note(kaa_client *c, const char *owner, const char *by, void *user)
{
	(void)c, (void)user;
	pthread_mutex_lock(&seen.mu);
	seen.attach_notes++;
	snprintf(seen.note_owner, sizeof(seen.note_owner), "%s", owner);
	snprintf(seen.note_by, sizeof(seen.note_by), "%s", by);
	pthread_mutex_unlock(&seen.mu);
}

static void cb_detach_note(kaa_client *c, const char *by, void *user)
{
	(void)c, (void)by, (void)user;
	pthread_mutex_lock(&seen.mu);
	seen.detach_notes++;
	pthread_mutex_unlock(&seen.mu);
}

static void cb_event(kaa_client *c, const char *fqn, const char *source, uint64_t seq,
		     const char *body, void *user)
{
	(void)c, (void)fqn, (void)body, (void)user;
	pthread_mutex_lock(&seen.mu);
	if (seen.nevents < MAXLOG) {
		seen.events[seen.nevents].seq = seq;
		snprintf(seen.events[seen.nevents].source, sizeof(seen.events[0].source), "%s",
			 source);
		seen.nevents++;
	}
	pthread_mutex_unlock(&seen.mu);
}

static void cb_result(kaa_client *c, uint64_t seq, int err, int code, const char *msg, void *user)
{
	(void)c, (void)msg, (void)user;
	pthread_mutex_lock(&seen.mu);
	if (err == KAA_OK) {
		seen.results_ok++;
	} else {
		seen.results_fail++;
		seen.fail_code = code;
		seen.fail_seq = seq;
	}
	pthread_mutex_unlock(&seen.mu);
}

static void cb_listeners(kaa_client *c, const char *const *fqns, size_t nf, int code,
			 const char *const *keys, size_t n, void *user)
{
	(void)c, (void)fqns, (void)user;
	pthread_mutex_lock(&seen.mu);
	seen.listeners++;
	seen.listener_fqns = nf;
	seen.listener_n = code == 0 ? n : 0;
	snprintf(seen.listener0, sizeof(seen.listener0), "%s", n ? keys[0] : "");
	pthread_mutex_unlock(&seen.mu);
}

/* Polls cond (reading srv/seen under their locks) until it holds or 10 s pass. */
static bool wait_until(bool (*cond)(void))
{
	for (int i = 0; i < 1000; i++) {
		pthread_mutex_lock(&srv.mu);
		pthread_mutex_lock(&seen.mu);
		bool ok = cond();
		pthread_mutex_unlock(&seen.mu);
		pthread_mutex_unlock(&srv.mu);
		if (ok)
			return true;
		usleep(10 * 1000);
	}
	return false;
}

static uint64_t first_seq;

static size_t events_in_session(int s)
{
	size_t n = 0;
	for (size_t i = 0; i < srv.nev; i++)
		n += srv.ev[i].session == s;
	return n;
}

static bool c_first_session(void)
{
	return srv.hellos == 1 && events_in_session(1) == 3 && seen.attach_ok == 1;
}
static bool c_second_session(void)
{
	return srv.hellos >= 2 && seen.results_ok == 3;
}
static bool c_refused(void)
{
	return seen.results_fail == 1;
}
static bool c_busy_done(void)
{
	return seen.results_ok == 4;
}
static bool c_events_in(void)
{
	return seen.nevents >= 3 && srv.nacks >= 4;
}
static bool c_answers(void)
{
	return seen.listeners == 1 && seen.detach_ok == 1 && seen.ep_attach_fail == 1 &&
	       seen.attach_notes == 1 && seen.detach_notes == 1;
}

static void test_client_fake_server(void)
{
	kaa_runtime *rt = NULL;
	kaa_client *c = NULL;
	char boot[64], sub[300];
	const char *bootv[] = {boot};
	kaa_callbacks cbs = {.on_attach_result = cb_attach,
			     .on_detach_result = cb_detach,
			     .on_attach_notification = cb_attach_note,
			     .on_detach_notification = cb_detach_note,
			     .on_event = cb_event,
			     .on_event_result = cb_result,
			     .on_listeners = cb_listeners};
	kaa_client_options o = {.application_token = "app",
				.bootstrap_servers = bootv,
				.bootstrap_count = 1,
				.state_dir = sub,
				.callbacks = &cbs,
				.backoff_initial_ms = 50,
				.backoff_max_ms = 200,
				.state_no_fsync = true,
				.endpoint_access_token = "dev-token-1"};
	uint64_t seq;
	kaa_client_stats st;

	snprintf(sub, sizeof(sub), "%s/fake", dir);
	srv.ack_from_session = 2; /* the first session's events get no answer */
	CU_ASSERT_EQUAL_FATAL(srv_start(boot, sizeof(boot)), 0);
	CU_ASSERT_EQUAL_FATAL(kaa_runtime_new(&rt), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa_client_new(rt, &o, &c), KAA_OK);
	/* queued while offline, sent once online, in order */
	CU_ASSERT_EQUAL(kaa_client_attach_owner(c, "alice", "good", NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa_client_send_event(c, "a.B", NULL, "{\"n\":1}", &first_seq), KAA_OK);
	CU_ASSERT_EQUAL(kaa_client_send_event(c, "a.B", "EKH-other", "{\"n\":2}", &seq), KAA_OK);
	CU_ASSERT_EQUAL(kaa_client_send_event(c, "a.C", NULL, "{\"n\":3}", &seq), KAA_OK);
	CU_ASSERT_EQUAL(kaa_client_start(c), KAA_OK);
	CU_ASSERT_FATAL(wait_until(c_first_session));
	pthread_mutex_lock(&srv.mu);
	CU_ASSERT_STRING_EQUAL(srv.hello_token, "dev-token-1");
	CU_ASSERT_EQUAL(srv.ev[0].seq, first_seq);
	CU_ASSERT_EQUAL(srv.ev[1].seq, first_seq + 1);
	CU_ASSERT_EQUAL(srv.ev[2].seq, first_seq + 2);
	pthread_mutex_unlock(&srv.mu);
	pthread_mutex_lock(&seen.mu);
	CU_ASSERT_STRING_EQUAL(seen.owner_id, "owner-1");
	CU_ASSERT_EQUAL(seen.results_ok, 0);
	pthread_mutex_unlock(&seen.mu);
	CU_ASSERT_EQUAL(kaa_client_get_stats(c, &st), KAA_OK);
	CU_ASSERT_EQUAL(st.events_outbox, 3);

	/* the connection drops: the unacknowledged events go again, in seq order */
	srv_drop();
	CU_ASSERT_FATAL(wait_until(c_second_session));
	pthread_mutex_lock(&srv.mu);
	size_t k = 0;
	uint64_t again[3] = {0};
	for (size_t i = 0; i < srv.nev; i++)
		if (srv.ev[i].session == 2 && k < 3)
			again[k++] = srv.ev[i].seq;
	CU_ASSERT_EQUAL(k, 3);
	CU_ASSERT_EQUAL(again[0], first_seq);
	CU_ASSERT_EQUAL(again[1], first_seq + 1);
	CU_ASSERT_EQUAL(again[2], first_seq + 2);
	CU_ASSERT_EQUAL(srv.attach_reqs, 1); /* answered: not sent again */
	pthread_mutex_unlock(&srv.mu);
	CU_ASSERT_EQUAL(kaa_client_get_stats(c, &st), KAA_OK);
	CU_ASSERT_EQUAL(st.events_outbox, 0);
	CU_ASSERT_EQUAL(st.events_acked, 3);
	CU_ASSERT_EQUAL(st.events_sent, 6);

	/* a refused event is dropped and reported */
	CU_ASSERT_EQUAL(kaa_client_send_event(c, "bad.Fqn", NULL, "{}", &seq), KAA_OK);
	CU_ASSERT_FATAL(wait_until(c_refused));
	pthread_mutex_lock(&seen.mu);
	CU_ASSERT_EQUAL(seen.fail_seq, seq);
	CU_ASSERT_EQUAL(seen.fail_code, KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_INVALID_EVENT);
	pthread_mutex_unlock(&seen.mu);
	CU_ASSERT_EQUAL(kaa_client_get_stats(c, &st), KAA_OK);
	CU_ASSERT_EQUAL(st.events_outbox, 0);
	CU_ASSERT_EQUAL(st.events_failed, 1);

	/* an overloaded server: the event goes again after retry_after_ms */
	CU_ASSERT_EQUAL(kaa_client_send_event(c, "busy.Fqn", NULL, "{}", &seq), KAA_OK);
	CU_ASSERT_FATAL(wait_until(c_busy_done));
	pthread_mutex_lock(&srv.mu);
	CU_ASSERT_EQUAL(srv.busy_seen, 2);
	pthread_mutex_unlock(&srv.mu);
	pthread_mutex_lock(&seen.mu);
	CU_ASSERT_EQUAL(seen.results_fail, 1); /* not a refusal */
	pthread_mutex_unlock(&seen.mu);

	/* delivered events: each acknowledged, each (source, seq) processed once */
	srv_push_event("x.Y", "SRC", 5, "{\"v\":1}");
	srv_push_event("x.Y", "SRC", 5, "{\"v\":1}");
	srv_push_event("x.Y", "SRC", 4, "{\"v\":0}");
	srv_push_event("x.Y", "SRC2", 5, "{\"v\":2}");
	CU_ASSERT_FATAL(wait_until(c_events_in));
	pthread_mutex_lock(&seen.mu);
	CU_ASSERT_EQUAL(seen.nevents, 3);
	CU_ASSERT_EQUAL(seen.events[0].seq, 5);
	CU_ASSERT_STRING_EQUAL(seen.events[0].source, "SRC");
	CU_ASSERT_EQUAL(seen.events[1].seq, 4);
	CU_ASSERT_STRING_EQUAL(seen.events[2].source, "SRC2");
	pthread_mutex_unlock(&seen.mu);
	pthread_mutex_lock(&srv.mu);
	CU_ASSERT_EQUAL(srv.nacks, 4);
	CU_ASSERT_EQUAL(srv.acks[1].seq, 5);
	CU_ASSERT_STRING_EQUAL(srv.acks[1].source, "SRC");
	CU_ASSERT_STRING_EQUAL(srv.acks[3].source, "SRC2");
	pthread_mutex_unlock(&srv.mu);
	CU_ASSERT_EQUAL(kaa_client_get_stats(c, &st), KAA_OK);
	CU_ASSERT_EQUAL(st.events_received, 3);
	CU_ASSERT_EQUAL(st.events_duplicates, 1);

	/* listeners, detach, a refused endpoint attach, notifications */
	const char *fq[] = {"a.B", "a.C"};
	CU_ASSERT_EQUAL(kaa_client_find_listeners(c, fq, 2), KAA_OK);
	CU_ASSERT_EQUAL(kaa_client_detach(c, NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa_client_attach_endpoint(c, "tok-x"), KAA_OK);
	srv_push_notifications();
	CU_ASSERT_FATAL(wait_until(c_answers));
	pthread_mutex_lock(&seen.mu);
	CU_ASSERT_EQUAL(seen.listener_n, 2);
	CU_ASSERT_EQUAL(seen.listener_fqns, 2);
	CU_ASSERT_STRING_EQUAL(seen.listener0, "K1");
	CU_ASSERT_STRING_EQUAL(seen.detach_key, "");
	CU_ASSERT_STRING_EQUAL(seen.ep_token, "tok-x");
	CU_ASSERT_EQUAL(seen.ep_attach_code,
			KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_INVALID_TOKEN);
	CU_ASSERT_STRING_EQUAL(seen.note_owner, "owner-2");
	CU_ASSERT_STRING_EQUAL(seen.note_by, "BY-1");
	pthread_mutex_unlock(&seen.mu);

	kaa_client_free(c);
	kaa_runtime_free(rt);
	srv_stop();
}

static const kaa__cu_test tests[] = {
	{"duplicate filter basics and window edges", test_dedup_basic},
	{"duplicate filter against a reference model", test_dedup_model},
	{"duplicate filter source eviction", test_dedup_eviction},
	{"outbox bounds and re-send order", test_outbox},
	{"event seqs across a state reload", test_seq_persistence},
	{"endpoint access token", test_access_token},
	{"frames of the event and owner requests", test_frames},
	{"client event and owner API checks", test_client_api},
	{"client against a fake operations server", test_client_fake_server},
};

int main(void)
{
	return kaa__cu_run("sdk events", tests, KAA__CU_COUNT(tests), setup, teardown);
}
