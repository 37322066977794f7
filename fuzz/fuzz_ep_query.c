// fuzz-sources: lib/base/alloc.c lib/base/base64.c lib/json/filter.c lib/json/json_merge.c lib/base/error.c lib/base/log.c services/control/ep_query.c services/control/router.c
// fuzz-pkgs: yajl libcrypto
/*
 * The query strings of the fleet routes (endpoint list, log records) and
 * their cursors come from any client holding credentials: parsing must
 * never crash, must either fail naming a parameter with a message or
 * produce bounded values, and a log cursor the server writes must parse
 * back to the same position.
 */
#include "control/ep_query.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *q = malloc(size + 1);
	if (!q)
		return 0;
	memcpy(q, data, size);
	q[size] = '\0';
	kaa__epq_error e;
	kaa__epq_list l;
	if (kaa__epq_list_parse(q, &l, &e) == 0) {
		if (l.limit < 1 || l.limit > KAA_EPQ_LIMIT_MAX || l.online < -1 || l.online > 1 ||
		    l.group_id < 0 || (l.after[0] && !kaa__epq_key_valid(l.after)))
			abort();
		kaa__epq_list_free(&l);
	} else if (!e.param || !e.message) {
		abort();
	}
	kaa__epq_logs g;
	if (kaa__epq_logs_parse(q, &g, &e) == 0) {
		if (g.limit < 1 || g.limit > KAA_EPQ_LIMIT_MAX || g.from_ms > g.to_ms)
			abort();
		if (g.has_after) {
			char cur[KAA_EPQ_CURSOR_MAX], again[KAA_EPQ_CURSOR_MAX + 16];
			kaa__epq_logs back;
			if (kaa__epq_log_cursor(&g.after, cur, sizeof(cur)) != 0)
				abort();
			snprintf(again, sizeof(again), "cursor=%s", cur);
			if (kaa__epq_logs_parse(again, &back, &e) != 0 || !back.has_after ||
			    back.after.received_ms != g.after.received_ms ||
			    back.after.index != g.after.index ||
			    strcmp(back.after.key_hash, g.after.key_hash) != 0 ||
			    strcmp(back.after.batch_id, g.after.batch_id) != 0)
				abort();
		}
	} else if (!e.param || !e.message) {
		abort();
	}
	free(q);
	return 0;
}
