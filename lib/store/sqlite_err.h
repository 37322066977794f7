/*
 * sqlite_err.h - the one mapping from SQLite result codes to kaa_err, for
 * every SQLite-backed store (metadata store, endpoint store):
 *   OK/DONE/ROW -> KAA_OK; CONSTRAINT unique/primary key -> KAA_ERR_EXISTS,
 *   foreign key -> KAA_ERR_NOTFOUND, other constraints -> KAA_ERR_INVAL;
 *   BUSY/LOCKED -> KAA_ERR_TIMEOUT; SQLITE_NOMEM aborts through kaa__oom() like
 *   any allocation failure of the daemons; TOOBIG; file and permission
 *   failures -> KAA_ERR_IO; anything else -> KAA_ERR_INTERNAL.
 * Logs busy (warn) and I/O or unexpected errors (error) under module mod,
 * naming the operation what. db may be NULL (open failed). Any thread.
 */
#ifndef KAA_SQLITE_ERR_H
#define KAA_SQLITE_ERR_H

#include <sqlite3.h>

int kaa__sqlite_err(sqlite3 *db, int rc, const char *mod, const char *what);

#endif
