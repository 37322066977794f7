#include "base/error.h"

#include <errno.h>

/* Part of the SDK's public API too (sdk/include/kaa/error.h): exported
 * when libkaa is built as a shared library. */
__attribute__((visibility("default"))) const char *kaa_strerror(int err)
{
	switch ((kaa_err)err) {
	case KAA_OK: return "ok";
	case KAA_ERR_NOMEM: return "out of memory";
	case KAA_ERR_INVAL: return "invalid argument";
	case KAA_ERR_IO: return "I/O error";
	case KAA_ERR_UNAVAILABLE: return "service unavailable";
	case KAA_ERR_TIMEOUT: return "timed out";
	case KAA_ERR_NOTFOUND: return "not found";
	case KAA_ERR_EXISTS: return "already exists";
	case KAA_ERR_CONFLICT: return "conflict";
	case KAA_ERR_PROTOCOL: return "protocol error";
	case KAA_ERR_COMPACTED: return "revision compacted";
	case KAA_ERR_LEASE_LOST: return "lease lost";
	case KAA_ERR_CANCELED: return "canceled";
	case KAA_ERR_TOO_BIG: return "too big";
	case KAA_ERR_INTERNAL: return "internal error";
	}
	return "unknown error";
}

int kaa__err_from_errno(int errnum)
{
	switch (errnum) {
	case ENOMEM: return KAA_ERR_NOMEM;
	case EINVAL: return KAA_ERR_INVAL;
	case ENOENT: return KAA_ERR_NOTFOUND;
	case EEXIST: return KAA_ERR_EXISTS;
	case ETIMEDOUT: return KAA_ERR_TIMEOUT;
	case ECONNREFUSED:
	case ECONNRESET:
	case EHOSTUNREACH:
	case ENETUNREACH: return KAA_ERR_UNAVAILABLE;
	case E2BIG:
	case EMSGSIZE: return KAA_ERR_TOO_BIG;
	case ECANCELED: return KAA_ERR_CANCELED;
	default: return KAA_ERR_IO;
	}
}
