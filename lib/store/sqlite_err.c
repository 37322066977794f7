#include "store/sqlite_err.h"

#include "base/alloc.h"
#include "base/error.h"
#include "base/log.h"

int kaa__sqlite_err(sqlite3 *db, int rc, const char *mod, const char *what)
{
	int ext = db ? sqlite3_extended_errcode(db) : rc;
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW: return KAA_OK;
	case SQLITE_CONSTRAINT:
		if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
			return KAA_ERR_EXISTS;
		if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
			return KAA_ERR_NOTFOUND;
		return KAA_ERR_INVAL;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: KAA_WARN(mod, "sqlite_busy op=%s", what); return KAA_ERR_TIMEOUT;
	case SQLITE_NOMEM: kaa__oom();
	case SQLITE_TOOBIG: return KAA_ERR_TOO_BIG;
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_CANTOPEN:
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
		KAA_ERROR(mod, "sqlite_io op=%s code=%d msg=\"%s\"", what, ext,
			  db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		return KAA_ERR_IO;
	default:
		KAA_ERROR(mod, "sqlite_error op=%s code=%d msg=\"%s\"", what, ext,
			  db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		return KAA_ERR_INTERNAL;
	}
}
