/*
 * log.h - structured, level-checked logging for the daemons.
 *
 * One line per record on stderr in logfmt:
 *   ts=2026-11-27T20:04:54.123Z level=info mod=registry msg="registered" node=a
 * The message is a printf format checked by the compiler; callers add
 * key=value pairs in the format itself. Values that may contain spaces or
 * quotes must be passed through kaa__log_quote-free formats (%s of plain
 * tokens) or quoted by the caller with "%s" inside msg.
 * Thread-safe: each record is written with one write(2).
 * The SDK never logs through this (it reports through callbacks).
 */
#ifndef KAA_LOG_H
#define KAA_LOG_H

enum kaa_log_level {
	KAA_LOG_DEBUG = 0,
	KAA_LOG_INFO = 1,
	KAA_LOG_WARN = 2,
	KAA_LOG_ERROR = 3,
};

extern int kaa__log_level; /* records below this level are dropped */

/* Parses "debug", "info", "warn", "error"; returns -1 if unknown. */
int kaa__log_level_parse(const char *s);

void kaa__log_write(int level, const char *mod, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define KAA_LOG(level, mod, ...)                                     \
	do {                                                         \
		if ((level) >= kaa__log_level)                       \
			kaa__log_write((level), (mod), __VA_ARGS__); \
	} while (0)

#define KAA_DEBUG(mod, ...) KAA_LOG(KAA_LOG_DEBUG, mod, __VA_ARGS__)
#define KAA_INFO(mod, ...) KAA_LOG(KAA_LOG_INFO, mod, __VA_ARGS__)
#define KAA_WARN(mod, ...) KAA_LOG(KAA_LOG_WARN, mod, __VA_ARGS__)
#define KAA_ERROR(mod, ...) KAA_LOG(KAA_LOG_ERROR, mod, __VA_ARGS__)

#endif
