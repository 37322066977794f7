/*
 * test_util.h - environment and scratch-directory helpers of the tests.
 * libc only, like cu_main.h, so every test binary links them. Any thread.
 */
#ifndef KAA_TEST_UTIL_H
#define KAA_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Returns getenv(name) (borrowed), or NULL after telling stderr to run the
 * test through e2e/run-tests.sh when name is unset or empty.
 */
const char *kaa__test_require_env(const char *name);

/*
 * Creates a fresh directory "$TMPDIR/<name>-XXXXXX" ($TMPDIR unset or
 * empty: /tmp) and writes its path to dir[size]. Returns 0, or -1 (errno
 * set) when the path does not fit or mkdtemp() fails.
 */
int kaa__test_tmpdir(char *dir, size_t size, const char *name);

/*
 * Removes path and everything below it, not following symbolic links.
 * Returns 0, or -1 when something could not be removed.
 */
int kaa__test_rm_tree(const char *path);

/*
 * Polls cond(arg) every 10 ms until it holds (true) or timeout_ms pass
 * (false); cond runs on the calling thread.
 */
bool kaa__test_wait_until(bool (*cond)(void *), void *arg, int timeout_ms);

#endif
