/* The send side's outbox: events kept until the server acknowledges them. */
#include "sdk_events.h"

#include "base/error.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX 1000

void kaa__outbox_init(kaa__outbox *ob, size_t max)
{
	memset(ob, 0, sizeof(*ob));
	ob->max = max ? max : DEFAULT_MAX;
}

void kaa__outbox_clear(kaa__outbox *ob)
{
	for (size_t i = 0; i < ob->n; i++)
		free(ob->v[i].fqn);
	free(ob->v);
	ob->v = NULL;
	ob->n = ob->cap = ob->nsent = 0;
}

int kaa__outbox_push(kaa__outbox *ob, uint64_t seq, const char *fqn, const char *target,
		     const char *body)
{
	size_t fl, tl, bl;
	char *mem;

	if (!fqn || !body)
		return KAA_ERR_INVAL;
	if (ob->n > 0 && seq <= ob->v[ob->n - 1].seq)
		return KAA_ERR_INVAL;
	if (ob->n >= ob->max)
		return KAA_ERR_TOO_BIG;
	if (!target)
		target = "";
	if (ob->n == ob->cap) {
		size_t nc = ob->cap ? ob->cap * 2 : 8;
		if (nc > ob->max)
			nc = ob->max;
		kaa__ob_event *nv = realloc(ob->v, nc * sizeof(*nv));
		if (!nv)
			return KAA_ERR_NOMEM;
		ob->v = nv;
		ob->cap = nc;
	}
	fl = strlen(fqn);
	tl = strlen(target);
	bl = strlen(body);
	mem = malloc(fl + tl + bl + 3);
	if (!mem)
		return KAA_ERR_NOMEM;
	kaa__ob_event *e = &ob->v[ob->n++];
	e->seq = seq;
	e->req = 0;
	e->sent_ms = 0;
	e->fqn = mem;
	memcpy(e->fqn, fqn, fl + 1);
	e->target = mem + fl + 1;
	memcpy(e->target, target, tl + 1);
	e->body = e->target + tl + 1;
	memcpy(e->body, body, bl + 1);
	return KAA_OK;
}

kaa__ob_event *kaa__outbox_next_unsent(kaa__outbox *ob)
{
	return ob->nsent < ob->n ? &ob->v[ob->nsent] : NULL;
}

void kaa__outbox_mark_sent(kaa__outbox *ob, uint64_t req, int64_t now_ms)
{
	if (ob->nsent < ob->n) {
		ob->v[ob->nsent].sent_ms = now_ms;
		ob->v[ob->nsent++].req = req;
	}
}

bool kaa__outbox_stale(const kaa__outbox *ob, int64_t before_ms)
{
	/* sent in index order with a monotonic clock: the first is the oldest */
	return ob->nsent > 0 && ob->v[0].sent_ms < before_ms;
}

long kaa__outbox_find_seq(const kaa__outbox *ob, uint64_t seq)
{
	/* acks mostly come for the oldest events: a linear scan from the
	 * head is short; seqs are sorted, so stop early */
	for (size_t i = 0; i < ob->n && ob->v[i].seq <= seq; i++)
		if (ob->v[i].seq == seq)
			return (long)i;
	return -1;
}

long kaa__outbox_find_req(const kaa__outbox *ob, uint64_t req)
{
	if (req == 0)
		return -1;
	for (size_t i = 0; i < ob->nsent; i++)
		if (ob->v[i].req == req)
			return (long)i;
	return -1;
}

void kaa__outbox_remove(kaa__outbox *ob, size_t i)
{
	if (i >= ob->n)
		return;
	free(ob->v[i].fqn);
	memmove(&ob->v[i], &ob->v[i + 1], (ob->n - i - 1) * sizeof(ob->v[0]));
	ob->n--;
	if (i < ob->nsent)
		ob->nsent--;
}

void kaa__outbox_unsend_from(kaa__outbox *ob, size_t i)
{
	if (i >= ob->nsent)
		return;
	for (size_t k = i; k < ob->nsent; k++)
		ob->v[k].req = 0;
	ob->nsent = i;
}
