/*
 * console_files.h - the web console's static files, served by the control
 * service under /console/ from a directory (kaa-node --console-dir; the
 * files are built from console/ by `make console`).
 *
 * GET and HEAD only (405 otherwise). "/console" redirects to "/console/".
 * The path after /console/ is percent-decoded (an encoded '/' or NUL is
 * refused) and must not hold an empty, "." or ".." segment, a segment
 * starting with '.', or a backslash: 404. A file is served only if its
 * real path stays inside the directory's real path (no symlink escape).
 * A path whose last segment has no '.' and names no file is a client-side
 * route: index.html is answered (single-page application); a missing file
 * with an extension is 404, so a missing asset never comes back as HTML.
 *
 * Headers: Content-Type by extension; Cache-Control "immutable" for
 * assets/ (content-hashed names), "no-cache" otherwise; on every answer
 * Content-Security-Policy (self only, no inline script or style,
 * frame-ancestors 'none'), X-Content-Type-Options: nosniff,
 * X-Frame-Options: DENY, Referrer-Policy: no-referrer.
 *
 * Threads: any thread; keeps no state.
 */
#ifndef KAA_CONTROL_CONSOLE_FILES_H
#define KAA_CONTROL_CONSOLE_FILES_H

#include "http/http_server.h"

#include <stdbool.h>
#include <stddef.h>

/* Files larger than this are answered 500 (the built console is far
 * smaller). */
#define KAA_CONSOLE_MAX_FILE (16u * 1024 * 1024)

/* True for "/console" and every path under "/console/". */
bool kaa__console_path(const char *path);

/* Answers req (a kaa__console_path) from dir (borrowed; NULL or a missing
 * directory: 404 "console not built"). */
void kaa__console_serve(const char *dir, const kaa__http_request *req, kaa__http_response *resp);

/* The path below the console root that a request path names, checked as
 * described above: "" for the root, "assets/x.js"... Returns false (out
 * untouched or partial) when the path is refused or does not fit cap. */
bool kaa__console_rel_path(const char *path, char *out, size_t cap);

/* The default directory when no --console-dir is given: <dir of the
 * executable>/../console (build/bin/kaa-node finds build/console), else
 * /usr/share/kaa/console. Copies at most cap bytes; false when neither
 * holds an index.html (out is then the packaged path). */
bool kaa__console_default_dir(char *out, size_t cap);

#endif
