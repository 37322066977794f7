/*
 * sdk_events.h - libkaa's event bookkeeping (not installed): the receive
 * side's duplicate filter (sdk_event_dedup.c) and the send side's outbox
 * (sdk_event_outbox.c), which the client's events (sdk_events.c) drive.
 * Both are plain data structures without I/O or
 * locking; the client serialises access with the runtime lock. Every
 * function returns KAA_OK or a negative kaa_err unless it says otherwise;
 * none prints or aborts.
 */
#ifndef KAA_SDK_EVENTS_H
#define KAA_SDK_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- duplicate filter (sdk_event_dedup.c) -------------------------------
 * Delivery is at-least-once, so a sink sees a (source, seq) again after a
 * lost EventAck or a reconnect. Per source it keeps the highest seq seen
 * and a KAA__DEDUP_WINDOW-bit map of the seqs below it: a seq inside the
 * window is new once; a seq below the window is treated as a duplicate
 * (sources number their events increasingly, so it was seen long ago).
 * At most max_sources sources are tracked; a new one beyond that evicts
 * the least recently seen, whose next event then counts as new. */
#define KAA__DEDUP_WINDOW 1024
#define KAA__DEDUP_KEY_MAX 256 /* bytes of a source key hash */

typedef struct kaa__dedup kaa__dedup;

/* max_sources 0 means 4096. KAA_ERR_NOMEM. Freed with kaa__dedup_free. */
int kaa__dedup_new(size_t max_sources, kaa__dedup **out);
void kaa__dedup_free(kaa__dedup *d);
/* Records (source, seq). Returns 1 when it is new (process it), 0 when it
 * is a duplicate, KAA_ERR_INVAL when source is NULL or longer than
 * KAA__DEDUP_KEY_MAX, KAA_ERR_NOMEM (nothing recorded). */
int kaa__dedup_check(kaa__dedup *d, const char *source, uint64_t seq);
/* Sources tracked now. */
size_t kaa__dedup_sources(const kaa__dedup *d);
/* Sources evicted since kaa__dedup_new. */
uint64_t kaa__dedup_evictions(const kaa__dedup *d);

/* ---- outbox (sdk_event_outbox.c) ------------------------------------------
 * The events sent and not yet acknowledged by the server, in seq order.
 * Entries [0, nsent) were sent in the current session (req = the request
 * id of that send); [nsent, n) wait to be sent. A new session makes every
 * entry unsent again, so unacknowledged events go out again in seq order. */
typedef struct kaa__ob_event {
	uint64_t seq;
	uint64_t req;    /* request id of the send in this session, 0 when unsent */
	int64_t sent_ms; /* when it was sent (monotonic ms); sent entries are in send order */
	char *fqn;       /* fqn, target ("" = broadcast) and body share one allocation */
	char *target;
	char *body;
} kaa__ob_event;

typedef struct kaa__outbox {
	kaa__ob_event *v;
	size_t n, cap, max, nsent;
} kaa__outbox;

/* An empty outbox holding at most max events (0: 1000). No allocation. */
void kaa__outbox_init(kaa__outbox *ob, size_t max);
/* Frees every entry; ob can be initialised again. */
void kaa__outbox_clear(kaa__outbox *ob);
/* Appends an unsent event (strings copied; target NULL = ""). seq must be
 * greater than the last entry's. KAA_ERR_TOO_BIG (full), KAA_ERR_INVAL
 * (NULL fqn/body or seq not increasing), KAA_ERR_NOMEM. */
int kaa__outbox_push(kaa__outbox *ob, uint64_t seq, const char *fqn, const char *target,
		     const char *body);
/* The next event to send (the oldest unsent), or NULL. */
kaa__ob_event *kaa__outbox_next_unsent(kaa__outbox *ob);
/* Marks the event returned by kaa__outbox_next_unsent as sent with req at
 * now_ms. */
void kaa__outbox_mark_sent(kaa__outbox *ob, uint64_t req, int64_t now_ms);
/* True when the oldest sent event was sent before before_ms (the server
 * did not answer it in time). */
bool kaa__outbox_stale(const kaa__outbox *ob, int64_t before_ms);
/* Index of the entry with this seq / with this (non-zero) request id in
 * the current session, or -1. */
long kaa__outbox_find_seq(const kaa__outbox *ob, uint64_t seq);
long kaa__outbox_find_req(const kaa__outbox *ob, uint64_t req);
/* Removes entry i (acknowledged or refused). */
void kaa__outbox_remove(kaa__outbox *ob, size_t i);
/* Entries from index i on become unsent (to be sent again in seq order);
 * i = 0 after a reconnect. */
void kaa__outbox_unsend_from(kaa__outbox *ob, size_t i);

#endif
