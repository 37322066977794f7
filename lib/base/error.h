/*
 * error.h - the one error enum shared by every kaa binary and library.
 *
 * Functions in the internal library return 0 (KAA_OK) or a negative
 * kaa_err value. errno is converted to a kaa_err at the system-call
 * boundary (kaa__err_from_errno) so callers never look at errno.
 * Thread-safe: kaa_strerror returns static strings.
 */
#ifndef KAA_ERROR_H
#define KAA_ERROR_H

typedef enum kaa_err {
	KAA_OK = 0,
	KAA_ERR_NOMEM = -1,       /* allocation failed */
	KAA_ERR_INVAL = -2,       /* bad argument or malformed input */
	KAA_ERR_IO = -3,          /* system call failed (see log) */
	KAA_ERR_UNAVAILABLE = -4, /* peer (etcd, database) unreachable */
	KAA_ERR_TIMEOUT = -5,     /* deadline passed */
	KAA_ERR_NOTFOUND = -6,    /* key or object absent */
	KAA_ERR_EXISTS = -7,      /* already present */
	KAA_ERR_CONFLICT = -8,    /* compare-and-swap lost */
	KAA_ERR_PROTOCOL = -9,    /* peer sent bytes we cannot decode */
	KAA_ERR_COMPACTED = -10,  /* requested etcd revision was compacted */
	KAA_ERR_LEASE_LOST = -11, /* lease expired or was revoked */
	KAA_ERR_CANCELED = -12,   /* operation cancelled by shutdown */
	KAA_ERR_TOO_BIG = -13,    /* size limit exceeded */
	KAA_ERR_INTERNAL = -14,   /* bug: an invariant did not hold */
} kaa_err;

/* Static, never NULL; unknown codes give "unknown error". */
const char *kaa_strerror(int err);

/* Maps an errno value to the nearest kaa_err (never returns KAA_OK). */
int kaa__err_from_errno(int errnum);

#endif
