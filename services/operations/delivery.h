/*
 * delivery.h - configuration (push, sync, merge patches) and notifications
 * (topic list, subscriptions, delivery after each stream's position,
 * acknowledgements) for one session (layer L2 of services/operations: a
 * feature handler; may include the L1 headers ops_state.h, ops_send.h,
 * ops_sessions.h, ops_app_cache.h, ops_jobs.h, ops_io.h, ops_server.h and
 * lib/).
 *
 * Threads: any thread, with the session's mu held.
 */
#ifndef KAA_OPS_DELIVERY_H
#define KAA_OPS_DELIVERY_H

#include "operations/ops_state.h"

#include <stdbool.h>

/* Loads positions from ep.notif_state. */
int kaa__opl_positions_load(ops_session *s);
/* Stores positions into ep.notif_state (the caller saves the record). */
int kaa__opl_positions_store(ops_session *s);
ops_pos *kaa__opl_pos(ops_session *s, const char *topic, bool create);
/* The configuration the session's groups give: *doc malloc'd canonical. */
int kaa__opl_current_config(ops_session *s, char **doc, char hash[KAA_SHA256_HEX_SIZE]);
/* Pushes the configuration when it differs from what was delivered or is
 * awaiting its Ack (force: send even when equal, as up_to_date). */
void kaa__opl_config_push(kaa__operations *ops, ops_session *s, bool force);
void kaa__opl_config_sync(kaa__operations *ops, ops_session *s, const Kaa__Endpoint__V1__Frame *f);
/* The Ack of a server request (ConfigPush). */
void kaa__opl_ack_received(kaa__operations *ops, ops_session *s, const Kaa__Endpoint__V1__Frame *f);
/* Sends NotificationTopics (force: even when unchanged). */
void kaa__opl_topics_send(kaa__operations *ops, ops_session *s, bool force);
/* Sends the stored notifications after each stream's position. */
void kaa__opl_notify(kaa__operations *ops, ops_session *s);
void kaa__opl_notification_ack(kaa__operations *ops, ops_session *s,
			       const Kaa__Endpoint__V1__Frame *f);
void kaa__opl_subscribe(kaa__operations *ops, ops_session *s, const Kaa__Endpoint__V1__Frame *f,
			bool subscribe);
bool kaa__opl_topic_visible(const ops_session *s, const ops_topic *t);
bool kaa__opl_topic_subscribed(const ops_session *s, const ops_topic *t);

#endif
