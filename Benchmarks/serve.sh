#!/usr/bin/env bash
# Load-tests `sluice serve` (release build) on loopback with wrk and prints requests/s and
# latency for: GET /healthz (no store access, the HTTP floor every other figure is compared
# with), GET /v1/runs/{id}, webhook verification, a replayed webhook delivery (409), and the
# first two again over HTTPS.
# Usage: bash Benchmarks/serve.sh [--duration 20s] [--connections 32] [--port 18080]
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

duration=20s
connections=32
port=18080
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) duration="$2"; shift 2 ;;
        --connections) connections="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        *) echo "serve.sh: unknown argument $1 (expected --duration, --connections or --port)" >&2; exit 2 ;;
    esac
done

if ! command -v wrk >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        # A fresh machine's package lists may be empty: update them first.
        apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null
    else
        echo "serve.sh: wrk is not installed (Debian: apt-get install wrk)" >&2; exit 2
    fi
fi

swift build -c release --product sluice >/dev/null
sluice="$(swift build -c release --show-bin-path)/sluice"

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# The example project, with its own .sluice/ in the temporary folder.
cp -r pipelines procedures schemas examples "$work/"
echo "orgs: [acme]" > "$work/sluice.yml"
cd "$work"
export SLUICE_LOG_LEVEL=warning
"$sluice" keys init >/dev/null
token="$("$sluice" tokens create acme --name bench)"
hook_secret="$("$sluice" hooks create acme genai_costs_daily)"

"$sluice" serve --port "$port" >"$work/serve.log" 2>&1 &
server_pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    curl -fs "$base/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "$base/healthz" >/dev/null || { echo "serve.sh: the server did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }

# One finished run of the example pipeline to read.
run="$(curl -fs -X POST -H "Authorization: Bearer $token" -H "Content-Type: application/json" -d '{}' \
    "$base/v1/orgs/acme/pipelines/genai_costs_daily/runs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
state=""
for _ in $(seq 1 300); do
    state="$(curl -fs -H "Authorization: Bearer $token" "$base/v1/runs/$run" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')"
    case "$state" in succeeded|failed|cancelled) break ;; esac
    sleep 0.1
done
[ "$state" = succeeded ] || { echo "serve.sh: the run to read ended $state" >&2; exit 1; }
run_bytes="$(curl -fs -H "Authorization: Bearer $token" "$base/v1/runs/$run" | wc -c)"

# A webhook delivery signed once by Python's hmac (valid for the 5-minute window), written as a
# wrk script; with a URL, the same delivery is also posted once and its status printed.
# `replay.lua` sends an id delivered once before the measurement, so every request is a 409.
hook_script() { # $1 = webhook id, $2 = script file, [$3 = URL to post it to once]
    python3 - "$hook_secret" "$@" <<'PY'
import base64, hashlib, hmac, json, sys, time, urllib.error, urllib.request
secret, msg_id, path = sys.argv[1:4]
key = base64.b64decode(secret.removeprefix("whsec_"))
body = json.dumps({"type": "usage.ready", "data": {"day": "2026-11-20"}})
stamp = str(int(time.time()))
sig = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.{body}".encode(), hashlib.sha256).digest()).decode()
headers = {"Content-Type": "application/json", "webhook-id": msg_id,
           "webhook-timestamp": stamp, "webhook-signature": f"v1,{sig}"}
with open(path, "w") as out:
    out.write('wrk.method = "POST"\n')
    out.write(f"wrk.body = {json.dumps(body)}\n")
    for name, value in headers.items():
        out.write(f'wrk.headers["{name}"] = "{value}"\n')
if len(sys.argv) > 4:
    request = urllib.request.Request(sys.argv[4], data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request) as answer:
            print(answer.status)
    except urllib.error.HTTPError as refusal:
        print(refusal.code)
PY
}
status="$(hook_script msg_bench_verify "$work/verify.lua" "$base/v1/hooks/acme/genai_costs_daily/verify")"
[ "$status" = 200 ] || { echo "serve.sh: /verify answered $status, not 200" >&2; exit 1; }
status="$(hook_script msg_bench_replay "$work/replay.lua" "$base/v1/hooks/acme/genai_costs_daily")"
[ "$status" = 202 ] || { echo "serve.sh: the first delivery got $status, not 202" >&2; exit 1; }

# The same project served over HTTPS too (a second server, on the next port), with a
# self-signed certificate from openssl: the TLS figures sit beside the plain ones.
tls_port=$((port + 1))
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
chmod 600 "$work/key.pem"
"$sluice" serve --port "$tls_port" --tls-certificate "$work/cert.pem" --tls-key "$work/key.pem" >"$work/serve-tls.log" 2>&1 &
tls_pid=$!
trap 'kill "$tls_pid" 2>/dev/null || true; wait "$tls_pid" 2>/dev/null || true; cleanup' EXIT
tls_base="https://127.0.0.1:$tls_port"
for _ in $(seq 1 100); do
    curl -fs --cacert "$work/cert.pem" "$tls_base/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs --cacert "$work/cert.pem" "$tls_base/healthz" >/dev/null || { echo "serve.sh: the HTTPS server did not start:" >&2; cat "$work/serve-tls.log" >&2; exit 1; }

# wrk's report → "requests/s p50 p99 non-2xx/3xx"
measure() { # $1 = label, then wrk arguments
    local label="$1"; shift
    local out
    out="$(wrk -t2 -c"$connections" -d"$duration" --latency "$@")"
    local rps p50 p99 bad
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    bad="$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")"
    printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$rps" "$p50" "$p99" "${bad:-0}"
}

echo "sluice serve under wrk: $connections connections, 2 threads, $duration each, loopback (load before: $(cut -d' ' -f1 /proc/loadavg))"
results="$(
    measure "GET /healthz (baseline: no store access)" "$base/healthz"
    measure "GET /v1/runs/{id} (a finished 7-step run, $run_bytes bytes)" -H "Authorization: Bearer $token" "$base/v1/runs/$run"
    measure "POST /v1/hooks/.../verify (signature check)" -s "$work/verify.lua" "$base/v1/hooks/acme/genai_costs_daily/verify"
    measure "POST /v1/hooks/... replayed id (409, counted, audited)" -s "$work/replay.lua" "$base/v1/hooks/acme/genai_costs_daily"
    measure "HTTPS GET /healthz (kept-alive connections)" "$tls_base/healthz"
    measure "HTTPS GET /v1/runs/{id}" -H "Authorization: Bearer $token" "$tls_base/v1/runs/$run"
)"
floor="$(head -1 <<<"$results" | cut -f2)"
printf '  %-62s %12s %10s %10s  %s\n' request requests/s p50 p99 "of the floor"
while IFS=$'\t' read -r label rps p50 p99 bad; do
    share="$(python3 -c "print(f'{float(\"$rps\") / float(\"$floor\") * 100:.1f}%')")"
    printf '  %-62s %12s %10s %10s  %s' "$label" "$rps" "$p50" "$p99" "$share"
    case "$label" in
        *replayed*) [ "$bad" != 0 ] && printf '  (%s answered 409, as expected)' "$bad" ;;
        *) [ "$bad" != 0 ] && printf '  (%s non-2xx answers: figures are not valid)' "$bad" ;;
    esac
    printf '\n'
done <<<"$results"
