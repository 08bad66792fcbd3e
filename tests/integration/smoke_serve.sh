#!/usr/bin/env bash
# smoke_serve.sh - proves a docket binary (possibly run under an emulator, e.g.
# "qemu-aarch64-static zig-out/aarch64/bin/docket") serves /healthz and the UI on a free
# port and stops with exit 0 on SIGTERM. Usage: smoke_serve.sh "COMMAND"
set -euo pipefail
command=$1
work=$(mktemp -d)
trap 'kill -9 "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
# shellcheck disable=SC2086
$command --listen 127.0.0.1:0 --data-dir "$work/data" 2>"$work/log" &
pid=$!
address=""
for _ in $(seq 1 200); do
    address=$(grep -o 'msg=listening address=[0-9.]*:[0-9]*' "$work/log" | sed 's/.*address=//' || true)
    [ -n "$address" ] && break
    sleep 0.05
done
[ -n "$address" ] || { echo "smoke: no listening line"; cat "$work/log"; exit 1; }
curl -fsS "http://$address/healthz" | grep -q '"status":"ok"'
curl -fsS "http://$address/" | grep -q '<title>Docket</title>'
kill -TERM "$pid"
wait "$pid"
echo "smoke: $command served $address and stopped cleanly"
