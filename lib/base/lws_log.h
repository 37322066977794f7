/*
 * lws_log.h - routes libwebsockets' process-global log into lib/base/log.h
 * (errors and warnings; KAA_LWS_LOG=<LLL_ bits> shows more, for debugging).
 * Idempotent and thread-safe: every module that creates an lws context
 * calls it first.
 */
#ifndef KAA_LWS_LOG_H
#define KAA_LWS_LOG_H

void kaa__lws_log_init(void);

#endif
