#!/usr/bin/env bash
# The web console (issue 11 §2): kaa-node --demo serves the built console at
# /console/ with its security headers, refuses path traversal, and opens
# console sessions (cookie flags, CSRF); then a real browser (Debian's
# headless chromium through chromium-driver, Selenium from PyPI pinned in
# e2e/console/requirements.txt, in a venv under ~/.cache/kaa) logs in,
# creates an application, schemas, a group and a configuration, sees the
# API's validation errors at their fields, connects kaa-device with the
# token it shows, sees it online in the endpoint list, changes its
# configuration and sees kaa-device print it, sends a notification, sees
# a read-only user offered no edits, the node list, and logs out.
# Screenshots: build/console-screenshots/. Needs KAA_ASAN_BIN_DIR (or
# KAA_BIN_DIR) and the console built beside it (make console / test-bins).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

BIN_DIR=${KAA_ASAN_BIN_DIR:-${KAA_BIN_DIR:?}}
CONSOLE_DIR=$(cd "$BIN_DIR/.." && pwd)/console
SHOTS=${KAA_SCREENSHOT_DIR:-$here/../build/console-screenshots}
work=$(mktemp -d "${TMPDIR:-/tmp}/test_console.XXXXXX")
trap 'cleanup_pids; rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

if [ ! -f "$CONSOLE_DIR/index.html" ]; then
	fail "the console is not built in $CONSOLE_DIR (make BUILD=... console)"
	summary
	exit 1
fi

# ---- the pinned Selenium venv ----------------------------------------------
req=$here/console/requirements.txt
venv=${KAA_CACHE:-$HOME/.cache/kaa}/venv-console-$(sha256sum "$req" | cut -c1-12)
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import selenium' 2>/dev/null; then
	echo "== installing Selenium into $venv"
	tmpv="$venv.tmp.$$"
	rm -rf "$tmpv"
	if ! python3 -m venv "$tmpv" ||
		! "$tmpv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$req"; then
		rm -rf "$tmpv"
		fail "cannot install the pinned Selenium (python3-venv, PyPI)"
		summary
		exit 1
	fi
	rm -rf "$venv"
	mv "$tmpv" "$venv"
fi

read -r pc pb po pi <<<"$(free_ports 4)"
B=http://127.0.0.1:$pc
ADMIN_PW=console-admin-pw-1
(cd "$work" && exec env KAA_ADMIN_USER=admin KAA_ADMIN_PASSWORD=$ADMIN_PW \
	"$BIN_DIR/kaa-node" --demo --node-id console-node-1 --host 127.0.0.1 --bind 127.0.0.1 \
	--control-port "$pc" --bootstrap-port "$pb" --operations-port "$po" --internode-port "$pi" \
	--console-dir "$CONSOLE_DIR" >"$work/node.out" 2>"$work/node.err") &
E2E_PIDS+=($!)
NODE_PID=$!
check "node ready" wait_for 30000 http_is 200 "$B/readyz"

hdr() { curl -s -D - -o /dev/null "$@"; }

echo "== static files"
h=$(hdr "$B/console/")
check "/console/ is 200 text/html" grep -qi '^content-type: text/html' <<<"$h"
check "CSP: self only, no unsafe-inline, frame-ancestors none" bash -c \
	'grep -i "^content-security-policy:" | grep "script-src '"'"'self'"'"'" | grep "frame-ancestors '"'"'none'"'"'" | grep -vq unsafe-inline' <<<"$h"
check "X-Content-Type-Options: nosniff" grep -qi '^x-content-type-options: nosniff' <<<"$h"
check "index.html: Cache-Control no-cache" grep -qi '^cache-control: no-cache' <<<"$h"
asset=$(curl -s "$B/console/" | sed -n 's/.*src="\/console\/\(assets\/[^"]*\.js\)".*/\1/p')
h=$(hdr "$B/console/$asset")
check "a hashed asset is text/javascript" grep -qi '^content-type: text/javascript' <<<"$h"
check "... and immutable" grep -qi '^cache-control:.*immutable' <<<"$h"
check "/console redirects to /console/" bash -c \
	"curl -s -D - -o /dev/null '$B/console' | grep -qi '^location: /console/'"
check "a client-side route falls back to index.html" bash -c \
	"curl -s '$B/console/apps/7/schemas' | grep -q '<div id=\"app\">'"
check "a missing asset is 404, not HTML" http_is 404 "$B/console/assets/missing.js"
check "traversal with ../ refused" bash -c \
	"[ \"\$(curl -s --path-as-is -o '$work/t1' -w '%{http_code}' '$B/console/../../../../etc/passwd')\" != 200 ] && ! grep -q root: '$work/t1'"
check "traversal with %2e%2e refused (404)" bash -c \
	"[ \"\$(curl -s --path-as-is -o '$work/t2' -w '%{http_code}' '$B/console/%2e%2e/%2e%2e/%2e%2e/etc/passwd')\" = 404 ] && ! grep -q root: '$work/t2'"
check "encoded slash refused (404)" http_is 404 "$B/console/assets%2f..%2f..%2fetc%2fpasswd"
check "dotfiles are not served" http_is 404 "$B/console/.built"
check "POST to /console/ is 405" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -X POST '$B/console/')\" = 405 ]"

echo "== sessions"
login() { # USER PASSWORD [curl args...]
	local u=$1 p=$2
	shift 2
	curl -s -D "$work/login.h" -o "$work/login.json" -w '%{http_code}' -c "$work/jar" \
		-H 'Content-Type: application/json' -d "{\"user\":\"$u\",\"password\":\"$p\"}" "$@" \
		"$B/api/v1/session"
}
check "wrong password: 401" [ "$(login admin wrong)" = 401 ]
check "... without a Basic challenge" bash -c "! grep -qi '^www-authenticate' '$work/login.h'"
check "a form post cannot log in (415)" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' \
	-d 'user=admin&password=$ADMIN_PW' '$B/api/v1/session')\" = 415 ]"
check "login: 201" [ "$(login admin "$ADMIN_PW")" = 201 ]
cookie=$(grep -i '^set-cookie: kaa_session=' "$work/login.h" | tr -d '\r')
check "cookie HttpOnly" grep -qi '; HttpOnly' <<<"$cookie"
check "cookie SameSite=Strict" grep -qi '; SameSite=Strict' <<<"$cookie"
check "cookie Path=/" grep -qi '; Path=/' <<<"$cookie"
check "no Secure over plain http" bash -c "! grep -qi '; Secure' <<<'$cookie'"
check "the answer holds no password" bash -c "! grep -q '$ADMIN_PW' '$work/login.json'"
csrf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["csrfToken"])' "$work/login.json")
post_tenant() { # NAME [curl args]
	local n=$1
	shift
	curl -s -o /dev/null -w '%{http_code}' -b "$work/jar" -H 'Content-Type: application/json' \
		-d "{\"name\":\"$n\"}" "$@" "$B/api/v1/tenants"
}
check "cookie GET works" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -b '$work/jar' '$B/api/v1/tenants')\" = 200 ]"
check "cookie POST without X-CSRF-Token: 403" [ "$(post_tenant t-nocsrf)" = 403 ]
check "cookie POST with a wrong X-CSRF-Token: 403" [ "$(post_tenant t-bad -H "X-CSRF-Token: ${csrf//[0-9a-f]/0}")" = 403 ]
check "cookie POST with the X-CSRF-Token: 201" [ "$(post_tenant acme -H "X-CSRF-Token: $csrf")" = 201 ]
st=$(login admin "$ADMIN_PW" -H 'X-Forwarded-Proto: https')
check "over TLS (X-Forwarded-Proto: https) the cookie is Secure" bash -c \
	"[ $st = 201 ] && grep -qi '^set-cookie: kaa_session=.*; Secure' '$work/login.h'"
login admin "$ADMIN_PW" >/dev/null
csrf2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["csrfToken"])' "$work/login.json")
check "logout: 204 and the cookie cleared" bash -c "curl -s -D - -o /dev/null -b '$work/jar' -X DELETE \
	-H 'X-CSRF-Token: $csrf2' '$B/api/v1/session' | grep -qi '^set-cookie: kaa_session=;.*Max-Age=0'"
check "after logout the session is refused (401)" bash -c \
	"[ \"\$(curl -s -o /dev/null -w '%{http_code}' -b '$work/jar' '$B/api/v1/session')\" = 401 ]"

echo "== users for the browser"
tid=$(curl -s -u "admin:$ADMIN_PW" "$B/api/v1/tenants" | python3 -c '
import json, sys
print([t["id"] for t in json.load(sys.stdin)["items"] if t["name"] == "acme"][0])')
TA_PW=console-ta-pw-1
DEV_PW=console-dev-pw-1
mkuser() {
	curl -s -o /dev/null -w '%{http_code}' -u "admin:$ADMIN_PW" -H 'Content-Type: application/json' \
		-d "{\"name\":\"$1\",\"role\":\"$2\",\"password\":\"$3\"}" "$B/api/v1/tenants/$tid/users"
}
check "tenant admin ta created" [ "$(mkuser ta tenant-admin "$TA_PW")" = 201 ]
TA_USER=ta
# a tenant admin creates the developer, as in the product
check "developer dev created" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -u '$TA_USER:$TA_PW' \
	-H 'Content-Type: application/json' -d '{\"name\":\"dev\",\"role\":\"tenant-developer\",\"password\":\"$DEV_PW\"}' \
	'$B/api/v1/tenants/$tid/users')\" = 201 ]"

VIEWER_PW=console-viewer-pw-1
check "read-only user viewer created" [ "$(mkuser viewer tenant-user "$VIEWER_PW")" = 201 ]

echo "== the browser"
rm -rf "$SHOTS"
check "browser flow (login, application, schemas, field errors, nodes, logout)" \
	env SE_OFFLINE=true KAA_TA_PASSWORD="$TA_PW" KAA_DEV_PASSWORD="$DEV_PW" KAA_VIEWER_PASSWORD="$VIEWER_PW" KAA_ADMIN_PASSWORD="$ADMIN_PW" \
	KAA_NODE_ID=console-node-1 KAA_DEVICE="$BIN_DIR/kaa-device" KAA_BOOTSTRAP="127.0.0.1:$pb" \
	timeout 300 "$venv/bin/python" "$here/console/console_test.py" "$B" "$SHOTS" "$work"
check "screenshots written" bash -c "ls '$SHOTS'/overview.png '$SHOTS'/nodes.png '$SHOTS'/schema-error.png >/dev/null"

kill -TERM "$NODE_PID"
wait "$NODE_PID"
check "SIGTERM -> exit 0" [ $? = 0 ]
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$work/node.err"; then
	fail "sanitizer report in node.err"
	sed -n '1,60p' "$work/node.err"
fi
summary
