#include "coord/lease_keeper.h"

#include "base/clock.h"
#include "base/alloc.h"
#include "base/error.h"
#include "base/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define MARGIN_MS 500

struct kaa__lease_keeper {
	kaa__coord *coord;
	int64_t id;
	int64_t ttl_s;
	int64_t valid_until; /* monotonic ms; keeper thread only */
	kaa__lease_lost_fn lost;
	void *ud;
	atomic_bool alive;
	volatile int stop;
	pthread_t thread;
};

static void *keeper_main(void *arg)
{
	kaa__lease_keeper *k = arg;
	int64_t period = k->ttl_s * 1000 / 3;
	int64_t next = kaa__now_ms() + period;
	int64_t last_log = 0;

	if (period < 200)
		period = 200;
	while (!k->stop) {
		int64_t wait = next - kaa__now_ms();
		if (wait > 0 && kaa__sleep_ms_unless(wait, &k->stop))
			break;
		int64_t t0 = kaa__now_ms();
		int64_t ttl_left = 0;
		int rc = kaa__coord_lease_keepalive(k->coord, k->id, &ttl_left);
		if (rc == KAA_OK) {
			k->valid_until = t0 + ttl_left * 1000;
			next = t0 + period;
			continue;
		}
		if (rc != KAA_ERR_LEASE_LOST && kaa__now_ms() < k->valid_until - MARGIN_MS) {
			if (kaa__now_ms() - last_log > 5000) {
				KAA_WARN("lease", "keepalive_failed lease=%lld err=%s",
					 (long long)k->id, kaa_strerror(rc));
				last_log = kaa__now_ms();
			}
			next = kaa__now_ms() + 300;
			continue;
		}
		KAA_WARN("lease", "lease_lost lease=%lld err=%s", (long long)k->id,
			 kaa_strerror(rc));
		atomic_store(&k->alive, false);
		if (k->lost)
			k->lost(k->ud);
		break;
	}
	return NULL;
}

int kaa__lease_keeper_new(kaa__coord *c, int64_t ttl_s, kaa__lease_lost_fn lost, void *ud,
			  kaa__lease_keeper **out)
{
	kaa__lease_keeper *k;
	int64_t t0 = kaa__now_ms();
	int rc;

	*out = NULL;
	k = kaa__xcalloc(1, sizeof(*k));
	rc = kaa__coord_lease_grant(c, ttl_s, &k->id);
	if (rc != KAA_OK) {
		free(k);
		return rc;
	}
	k->coord = c;
	k->ttl_s = ttl_s;
	k->valid_until = t0 + ttl_s * 1000;
	k->lost = lost;
	k->ud = ud;
	atomic_store(&k->alive, true);
	if (pthread_create(&k->thread, NULL, keeper_main, k) != 0) {
		kaa__coord_lease_revoke(c, k->id);
		free(k);
		return KAA_ERR_IO;
	}
	*out = k;
	return KAA_OK;
}

int64_t kaa__lease_keeper_id(const kaa__lease_keeper *k)
{
	return k->id;
}

bool kaa__lease_keeper_alive(kaa__lease_keeper *k)
{
	return atomic_load(&k->alive);
}

void kaa__lease_keeper_free(kaa__lease_keeper *k, bool revoke)
{
	if (!k)
		return;
	k->stop = 1;
	pthread_join(k->thread, NULL);
	if (revoke && atomic_load(&k->alive)) {
		int rc = kaa__coord_lease_revoke(k->coord, k->id);
		if (rc != KAA_OK && rc != KAA_ERR_LEASE_LOST)
			KAA_WARN("lease", "revoke_failed lease=%lld err=%s", (long long)k->id,
				 kaa_strerror(rc));
	}
	free(k);
}
