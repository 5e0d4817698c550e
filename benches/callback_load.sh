#!/usr/bin/env bash
# Load benchmark of the WeChat callback (issue 4, "Performance"): `gongkai serve` with a
# store seeded by the demo (the 23 examples of 2017 published through the sandbox), driven
# by wrk on loopback in four scenarios: plain CLICK, plain text query, safe-mode CLICK,
# safe-mode text query. Prints requests/s, p50/p99 latency, server CPU per request and
# the server's peak RSS (VmHWM).
#
#   benches/callback_load.sh                      # 64 connections, 10 s per scenario
#   DURATION=30s CONNECTIONS=64 THREADS=2 benches/callback_load.sh
#   KEEP=1 benches/callback_load.sh               # keep the store, requests and server log
#
# Needs wrk (apt-get install wrk). Builds the release binary and the request generator.
set -euo pipefail

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
PORT=${PORT:-18089}
QUERY=${QUERY:-低保}
# Distinct encrypted messages per safe-mode scenario (each request must be a new message).
# DURATION must be in seconds (e.g. 10s).
SAFE_COUNT=${SAFE_COUNT:-150000}

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }

cargo build --release --quiet --bin gongkai --example make_callback_requests
bin=$root/target/release/gongkai
gen=$root/target/release/examples/make_callback_requests

work=$(mktemp -d /tmp/gongkai-cbload.XXXXXX)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ -n ${KEEP:-} ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "== seeding: gongkai demo --keep $work/store"
"$bin" demo --keep "$work/store" >"$work/demo.log" 2>&1 || { cat "$work/demo.log"; exit 1; }
store=$work/store
appid=$(sed -n 's/^appid = "\(.*\)"/\1/p' "$store/channels/wechat.toml")
token=$(cat "$store/secrets/wechat_cb.key")
# A fixed EncodingAESKey for the benchmark (43 base64 characters).
aes_key=$(head -c 32 /dev/urandom | base64 | tr -d '=\n' | cut -c1-43)
printf '%s' "$aes_key" >"$store/secrets/wechat_aes.key"
sed -i "s/^listen = \"127.0.0.1:0\"/listen = \"127.0.0.1:$PORT\"/" "$store/config.toml"
cat >>"$store/config.toml" <<TOML

[wechat_callback]
path = "/wechat"
channel = "wechat"
encoding_aes_key_file = "secrets/wechat_aes.key"
# The request files are signed once, before the runs.
timestamp_window = "1h"

[[wechat_callback.menu]]
name = "最新公开"
key = "LATEST"
action = "latest"
count = 5
TOML

# Each scenario's bodies are made just before its run, with CreateTime at the run's end:
# WeChat pushes a message milliseconds after its CreateTime, and the callback takes one
# created 3 s or more before for a retry of an earlier push (looked up before any work).
secs=${DURATION%s}
make_requests() {
  "$gen" "$work/req" "$token" "$appid" "$aes_key" "$SAFE_COUNT" LATEST "$QUERY" \
    "$(( $(date +%s) + secs + 5 ))" "$1"
}
make_requests plain_click

echo "== starting gongkai serve on 127.0.0.1:$PORT"
RUST_LOG=${RUST_LOG:-warn} "$bin" --config "$store/config.toml" serve >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  curl -s -o /dev/null "http://127.0.0.1:$PORT/wechat" 2>/dev/null && break
  sleep 0.1
done
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
hwm() { awk '/VmHWM/ {print $2}' "/proc/$server_pid/status"; }

# One request of each kind first: the answer must be a real reply, not an error.
sample() {
  local line path body
  line=$(head -n1 "$1")
  path=${line%%$'\t'*}
  body=${line#*$'\t'}
  body=${body//@ID@/42}
  curl -s -w ' [HTTP %{http_code}]' -H 'Content-Type: text/xml' --data-binary "$body" "http://127.0.0.1:$PORT$path" | head -c 300
  echo
}

printf '\n%-12s %9s %9s %8s %8s %8s %12s %9s %7s\n' scenario requests req/s p50_ms p99_ms max_ms cpu_us/req rss_MB errors
results=()
for s in plain_click plain_text safe_click safe_text; do
  make_requests "$s"
  echo "-- $s sample answer: $(sample "$work/req/$s.txt")" >&2
  before=$(cpu_ticks)
  out=$(CB_REQS="$work/req/$s.txt" CB_THREADS=$THREADS wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
    -s "$root/benches/callback_load.lua" "http://127.0.0.1:$PORT")
  after=$(cpu_ticks)
  r=$(grep '^RESULT' <<<"$out")
  get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $r"; }
  reqs=$(get requests)
  cpu_us=$(awk -v d=$((after - before)) -v t="$ticks" -v n="$reqs" 'BEGIN {printf "%.1f", d / t * 1e6 / n}')
  rss=$(awk -v k="$(hwm)" 'BEGIN {printf "%.1f", k / 1024}')
  errors="$(get non2xx)/$(get socket_errors)"
  [[ $(get repeated) != 0 ]] && errors="$errors rep=$(get repeated)"
  line=$(printf '%-12s %9s %9s %8s %8s %8s %12s %9s %7s' "$s" "$reqs" "$(get rps)" "$(get p50_ms)" "$(get p99_ms)" "$(get max_ms)" "$cpu_us" "$rss" "$errors")
  echo "$line"
  results+=("$line")
done
echo
echo "errors = non-2xx / socket errors; rep = requests that replayed an already-answered message."
echo "cores: $(nproc), load average: $(cut -d' ' -f1-3 /proc/loadavg); server log: $(grep -c . "$work/serve.log" || true) lines"
grep -m5 -E 'ERROR|WARN' "$work/serve.log" || true
