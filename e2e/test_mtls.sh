#!/usr/bin/env bash
# Mutual TLS on the operations port (issue 15 §2, optional): kaa-node
# --client-ca makes the wss handshake require a device certificate from
# that CA, and the certificate's public key must be the key the device
# registers with. A device with a certificate for its own key registers; a
# certificate of another key is refused at Hello (INVALID_PROOF); no
# certificate, or one from another CA, fails the handshake.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

BIN_DIR=${KAA_ASAN_BIN_DIR:-${KAA_BIN_DIR:?}}
work=$(mktemp -d "${TMPDIR:-/tmp}/test_mtls.XXXXXX")
trap 'cleanup_pids; [ -n "${KAA_E2E_KEEP:-}" ] || rm -rf "$work"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
read -r pc pb po pi <<<"$(free_ports 4)"

echo "== set-up: CAs, the node's certificate, device keys and certificates"
ca() { # ca NAME: NAME-ca.pem/.key
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=$1 CA" -keyout "$work/$1-ca.key" -out "$work/$1-ca.pem" 2>/dev/null
}
issue() { # issue CA KEYFILE OUT [SAN]: a certificate for KEYFILE's key signed by CA
	openssl req -new -key "$2" -subj "/CN=$(basename "$3")" -out "$3.csr" 2>/dev/null &&
		openssl x509 -req -in "$3.csr" -CA "$work/$1-ca.pem" -CAkey "$work/$1-ca.key" \
			-CAcreateserial -days 2 -out "$3" ${4:+-extfile <(printf 'subjectAltName=%s\n' "$4")} 2>/dev/null
}
devkey() { # devkey DIR: the key a device's state directory holds
	mkdir -p "$1/dev-0" &&
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1/dev-0/key.pem" 2>/dev/null
}
ok=1
ca server && ca devices && ca rogue || ok=0
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/node.key" 2>/dev/null || ok=0
issue server "$work/node.key" "$work/node.pem" "IP:127.0.0.1,DNS:localhost" || ok=0
for d in good other nocert rogue; do devkey "$work/$d" || ok=0; done
issue devices "$work/good/dev-0/key.pem" "$work/good.pem" || ok=0
issue devices "$work/other/dev-0/key.pem" "$work/other.pem" || ok=0 # another device's key
issue rogue "$work/rogue/dev-0/key.pem" "$work/rogue.pem" || ok=0
check "CAs, keys and certificates made with openssl" [ "$ok" = 1 ]

(cd "$work" && exec env KAA_ADMIN_USER=admin KAA_ADMIN_PASSWORD=demo-password-1 \
	"$BIN_DIR/kaa-node" --demo --host 127.0.0.1 --bind 127.0.0.1 --control-port "$pc" \
	--bootstrap-port "$pb" --operations-port "$po" --internode-port "$pi" \
	--tls-cert "$work/node.pem" --tls-key "$work/node.key" --client-ca "$work/devices-ca.pem" \
	>"$work/node.out" 2>"$work/node.err") &
E2E_PIDS+=($!)
check "kaa-node ready with --client-ca" wait_for 30000 http_is 200 "http://127.0.0.1:$pc/readyz"
check "the demo prints its application token" wait_for 5000 bash -c \
	"grep -q '^kaa demo: application token ' '$work/node.out'"
token=$(sed -n 's/^kaa demo: application token //p' "$work/node.out")

device() { # device NAME [flags]: one device for 4 s, summary in NAME.json
	local name=$1
	shift
	timeout 60 "$BIN_DIR/kaa-device" --bootstrap "127.0.0.1:$pb" --app-token "$token" \
		--ca "$work/server-ca.pem" --state-dir "$work/$name" --count 1 --duration 4 \
		--verbose --json "$@" >"$work/$name.json" 2>"$work/$name.err"
}
registered() { python3 -c 'import json, sys
s = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
sys.exit(0 if s["registered"] == int(sys.argv[2]) else 1)' "$work/$1.json" "$2"; }

echo "== a certificate for the device's own key"
device good --client-cert "$work/good.pem"
check "registers over mutual TLS" registered good 1
echo "== refused"
# the node refuses a certificate of another key at Hello (INVALID_PROOF,
# tests/unit/test_operations); the SDK does not even present one, since
# its TLS key is the device key
device other --client-cert "$work/good.pem" # the good device's certificate, another key
check "a certificate of another device's key: not registered" registered other 0
check "... the SDK refuses to present it" grep -q "client certificate" "$work/other.err"
device nocert
check "no client certificate: not registered" registered nocert 0
device rogue --client-cert "$work/rogue.pem"
check "a certificate from another CA: not registered" registered rogue 0
check "kaa-device refuses --client-cert with --count 2 (exit 2)" bash -c \
	"'$BIN_DIR/kaa-device' --bootstrap 127.0.0.1:1 --app-token t --count 2 --client-cert x 2>/dev/null; [ \$? = 2 ]"

for f in "$work"/*.err; do
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$f"; then
		fail "sanitizer report in $(basename "$f")"
		sed -n '1,40p' "$f"
	fi
done
summary
