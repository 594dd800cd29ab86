#!/usr/bin/env bash
# MQTT load, side by side: Rampart's embedded broker and Mosquitto (Debian `mosquitto`),
# driven by the same load generator (`rampart bench mqtt-qos0 | mqtt-qos1 | mqtt-latency |
# mqtt-idle`, crates/app/bench/src/mqtt.rs) in one run.
#
#   scripts/bench-mqtt.sh                        # everything (about 5 minutes)
#   MQTT_SKIP_RAMPART=1 scripts/bench-mqtt.sh    # Mosquitto only
#   MQTT_SKIP_MOSQUITTO=1 scripts/bench-mqtt.sh  # Rampart only
#   MQTT_SECONDS=10 MQTT_NO_BUILD=1 ...          # sending phase; reuse target/release/rampart
#
# Scenarios (issue 4): 10 publishers, 64-byte payloads, 1 subscriber on `bench/#` at the same
# QoS; deliveries are counted at the subscriber.
#   qos0      publishers open loop at QoS 0: accepted/s, delivered/s, loss, backlog
#   qos1      the same at QoS 1 (publishers pipelined, 256 in flight each): acknowledged/s
#   latency   20,000 msg/s in total at QoS 0: publish-to-delivery p50/p99
#             (Mosquitto twice: as configured by default, and with set_tcp_nodelay true)
#   idle      10,000 connections, CONNECT + one SUBSCRIBE each, then idle: server memory each
# Every server gets a fresh start per scenario, and every process this script starts is
# stopped at the end, whatever happens. Figures go to target/bench-mqtt/*.txt, the JSON lines
# to target/bench-mqtt/results.jsonl; the tables at the end compare them.
set -uo pipefail
cd "$(dirname "$0")/.."

# ---- How Rampart is started (edit here) ------------------------------------------------------
# Extra flags for `rampart serve`. The load generator connects anonymously, so the broker
# must allow anonymous clients on ordinary topics (`bench/...`).
RAMPART_FLAGS=${RAMPART_MQTT_FLAGS:---mqtt-allow-anonymous}
export RAMPART_MQTT_ALLOW_ANONYMOUS=1
# ----------------------------------------------------------------------------------------------

OUT=target/bench-mqtt
SECS=${MQTT_SECONDS:-10}
BIN=target/release/rampart
mkdir -p "$OUT" target/tmp
rm -f "$OUT"/*.txt "$OUT"/*.log "$OUT"/results.jsonl
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt 20500 ]; then
  echo "note: open-file limit is $(ulimit -n); the 10,000-connection idle test needs about 10,100 on each side" >&2
fi

PGIDS=()
TMPDIRS=()
cleanup() {
  for g in "${PGIDS[@]:-}"; do
    [ -n "$g" ] || continue
    kill -TERM -- "-$g" 2>/dev/null || true
  done
  sleep 0.5
  for g in "${PGIDS[@]:-}"; do
    [ -n "$g" ] || continue
    kill -KILL -- "-$g" 2>/dev/null || true
  done
  PGIDS=()
  for d in "${TMPDIRS[@]:-}"; do
    [ -n "$d" ] && rm -rf "$d"
  done
  TMPDIRS=()
}
trap cleanup EXIT INT TERM

stop_group() { # PGID: stop one server we started
  kill -TERM -- "-$1" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 -- "-$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$1" 2>/dev/null || true
}

free_port() { # a loopback TCP port nobody listens on, from 18830 up
  local p=18830
  while ss -ltnH 2>/dev/null | awk '{print $4}' | grep -q ":$p\$"; do p=$((p + 1)); done
  echo "$p"
}

if [ -z "${MQTT_NO_BUILD:-}" ]; then
  echo "== building (release)"
  cargo build --release -p rampart >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
fi
[ -x "$BIN" ] || { echo "$BIN is missing (unset MQTT_NO_BUILD)"; exit 1; }

echo "== machine"
{
  echo "cpus: $(nproc)  memory: $(free -m | awk '/Mem:/ {print $2}') MiB  kernel: $(uname -r)"
  echo "mosquitto: $( (mosquitto -h 2>/dev/null || /usr/sbin/mosquitto -h 2>/dev/null) | head -1)"
  echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "busiest other processes:"
  ps -eo pcpu,ni,comm --sort=-pcpu | head -6
} | tee "$OUT/machine.txt"

bench() { # LABEL SCENARIO TARGET PID [ENV=VALUE ...]: one run of the generator
  local label=$1 scenario=$2 target=$3 pid=$4
  shift 4
  echo "-- $label"
  env RAMPART_BENCH_MQTT_ADDR="$target" RAMPART_BENCH_MQTT_PID="$pid" \
    RAMPART_BENCH_MQTT_LABEL="$label" MQTT_SECONDS="$SECS" "$@" \
    timeout 600 "$BIN" bench "mqtt-$scenario" >"$OUT/$label.txt" 2>&1
  local rc=$?
  [ $rc -eq 0 ] || echo "   (exit $rc: $(tail -1 "$OUT/$label.txt"))"
  sed -n 's/^MQTT_RESULT //p' "$OUT/$label.txt" >>"$OUT/results.jsonl"
  grep -E "^mqtt-[a-z0-9]+ \(" "$OUT/$label.txt" | sed 's/^/   /' || true
}

# ---------------------------------------------------------------------------------------------
# Mosquitto: a fresh instance per scenario
# ---------------------------------------------------------------------------------------------
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
M_PID=""; M_ADDR=""
start_mosquitto() { # LABEL [EXTRA CONFIG LINE]
  local dir port log
  [ -x "$MOSQ" ] || { echo "   mosquitto is not installed (apt-get install mosquitto)"; return 1; }
  dir=$(mktemp -d -p target/tmp mosquitto.XXXXXX)
  TMPDIRS+=("$dir")
  port=$(free_port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\n%s\n' "$port" "${2:-}" >"$dir/mosquitto.conf"
  log="$OUT/mosquitto-$1.log"
  setsid "$MOSQ" -c "$dir/mosquitto.conf" >"$log" 2>&1 &
  M_PID=$!
  PGIDS+=("$M_PID")
  M_ADDR="127.0.0.1:$port"
  for _ in $(seq 1 100); do
    ss -ltnH 2>/dev/null | awk '{print $4}' | grep -q "^127.0.0.1:$port\$" && return 0
    kill -0 "$M_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "   mosquitto did not start:"; tail -5 "$log"; return 1
}

mosq_run() { # LABEL SCENARIO [CONFIG LINE] [ENV...]
  local label=$1 scenario=$2 conf=${3:-}
  shift 3
  start_mosquitto "$label" "$conf" || return 1
  bench "$label" "$scenario" "$M_ADDR" "$M_PID" "$@"
  stop_group "$M_PID"
}

# Durable QoS 1: the same load as telemetry of device `bench` on `rampart/v1/bench/telemetry`
# (JSON, about 100 bytes); Rampart stores each report before its PUBACK.
DURABLE_ENV=(RAMPART_BENCH_MQTT_DEVICE=bench RAMPART_BENCH_MQTT_USERNAME=bench)

if [ -n "${MQTT_SKIP_MOSQUITTO:-}" ]; then
  echo "== Mosquitto skipped (MQTT_SKIP_MOSQUITTO)"
else
  echo "== Mosquitto"
  mosq_run mosquitto-qos0 qos0 ""
  mosq_run mosquitto-qos1 qos1 ""
  mosq_run mosquitto-qos1-durable qos1 "" "${DURABLE_ENV[@]}" RAMPART_BENCH_MQTT_PASSWORD=x
  mosq_run mosquitto-latency latency ""
  mosq_run mosquitto-latency-nodelay latency "set_tcp_nodelay true"
  mosq_run mosquitto-idle idle ""
fi

# ---------------------------------------------------------------------------------------------
# Rampart: a fresh node per scenario
# ---------------------------------------------------------------------------------------------
R_PID=""; R_ADDR=""; RAMPART_NOTE=""
start_rampart() { # LABEL
  local data log
  data=$(mktemp -d -p target/tmp rampart-mqtt.XXXXXX)
  TMPDIRS+=("$data")
  log="$OUT/rampart-server-$1.log"
  # shellcheck disable=SC2086 # RAMPART_FLAGS is a list of flags
  # Every load-generator connection comes from 127.0.0.1: lift the per-address cap.
  printf '[mqtt]\nmax_connections_per_peer = 200000\n' >"$OUT/rampart-bench.toml"
  setsid "$BIN" serve --data "$data" --config "$OUT/rampart-bench.toml" --listen mqtt=127.0.0.1:0 --listen http=127.0.0.1:0 $RAMPART_FLAGS >"$log" 2>&1 &
  R_PID=$!
  PGIDS+=("$R_PID")
  R_ADDR=""
  for _ in $(seq 1 150); do
    R_ADDR=$(sed -n 's/^rampart: listening mqtt \(.*\)$/\1/p' "$log" | head -1)
    [ -n "$R_ADDR" ] && return 0
    kill -0 "$R_PID" 2>/dev/null || break
    sleep 0.1
  done
  RAMPART_NOTE="rampart did not start an mqtt listener (see $log): $(tail -2 "$log" | tr '\n' ' ')"
  stop_group "$R_PID"
  return 1
}

rampart_run() { # LABEL SCENARIO [ENV...]
  local label=$1 scenario=$2
  shift 2
  [ -z "$RAMPART_NOTE" ] || { echo "-- $label skipped"; return 1; }
  start_rampart "$label" || { echo "   $RAMPART_NOTE"; return 1; }
  bench "$label" "$scenario" "$R_ADDR" "$R_PID" "$@"
  stop_group "$R_PID"
}

if [ -n "${MQTT_SKIP_RAMPART:-}" ]; then
  RAMPART_NOTE="skipped (MQTT_SKIP_RAMPART)"
  echo "== Rampart skipped (MQTT_SKIP_RAMPART)"
else
  echo "== Rampart (flags: $RAMPART_FLAGS)"
  rampart_run rampart-qos0 qos0
  rampart_run rampart-qos1 qos1
  # Durable: register the device over HTTP, then publish as it.
  if [ -z "$RAMPART_NOTE" ] && start_rampart rampart-qos1-durable; then
    http=$(sed -n 's/^rampart: listening http \(.*\)$/\1/p' "$OUT/rampart-server-rampart-qos1-durable.log" | head -1)
    token=$(curl -s -X POST "http://$http/api/v1/devices" -d '{"id":"bench"}' |
      sed -n 's/.*"token":"\([0-9a-f]*\)".*/\1/p')
    bench rampart-qos1-durable qos1 "$R_ADDR" "$R_PID" "${DURABLE_ENV[@]}" RAMPART_BENCH_MQTT_PASSWORD="$token"
    stop_group "$R_PID"
  fi
  rampart_run rampart-latency latency
  rampart_run rampart-idle idle
fi

cleanup

# ---------------------------------------------------------------------------------------------
# Side by side
# ---------------------------------------------------------------------------------------------
table() { # TITLE RAMPART_FILE MOSQUITTO_FILE
  local title=$1 r="$OUT/$2.txt" m="$OUT/$3.txt"
  [ -s "$r" ] || [ -s "$m" ] || return 0
  echo
  echo "### $title"
  awk -v R="$r" -v M="$m" '
    function load(file, arr, keys, n,   line, name, val, unit, m) {
      n = 0
      while ((getline line < file) > 0) {
        if (line ~ /^==/ || line ~ /^\s*$/ || line ~ /^MQTT_RESULT/ || line ~ /^mqtt-/) continue
        if (match(line, /  +-?[0-9.]+(e[+-]?[0-9]+)?( .*)?$/) == 0) {
          if (match(line, /  +-?(NaN|inf)( .*)?$/) == 0) continue
        }
        name = substr(line, 1, RSTART - 1); sub(/ +$/, "", name)
        m = substr(line, RSTART); sub(/^ +/, "", m)
        val = m; sub(/ .*/, "", val)
        unit = m; if (unit ~ / /) { sub(/^[^ ]+ /, "", unit) } else { unit = "" }
        if (!(name in arr)) { keys[++n] = name }
        arr[name] = val; units[name] = unit
      }
      close(file)
      return n
    }
    BEGIN {
      nr = load(R, rv, rk); nm = load(M, mv, mk)
      printf "%-42s %14s %14s %10s  %s\n", "figure", "Rampart", "Mosquitto", "R/M", "unit"
      for (i = 1; i <= nr; i++) { order[++n] = rk[i]; seen[rk[i]] = 1 }
      for (i = 1; i <= nm; i++) if (!(mk[i] in seen)) order[++n] = mk[i]
      for (i = 1; i <= n; i++) {
        k = order[i]
        a = (k in rv) ? rv[k] : "-"; b = (k in mv) ? mv[k] : "-"
        ratio = "-"
        if (a != "-" && b != "-" && b + 0 != 0 && a ~ /^-?[0-9.]+$/ && b ~ /^-?[0-9.]+$/)
          ratio = sprintf("%.2f", a / b)
        printf "%-42s %14s %14s %10s  %s\n", k, a, b, ratio, units[k]
      }
    }'
}

{
  echo
  echo "==================== MQTT load: Rampart vs Mosquitto ===================="
  cat "$OUT/machine.txt"
  [ -z "$RAMPART_NOTE" ] || echo "Rampart: $RAMPART_NOTE; only Mosquitto's figures are shown."
  table "QoS 0, open loop: 10 publishers, 64 B, 1 subscriber on bench/#" rampart-qos0 mosquitto-qos0
  table "QoS 1, open loop (pipelined), QoS 1 subscriber" rampart-qos1 mosquitto-qos1
  table "QoS 1 durable: device telemetry on rampart/v1/bench/telemetry, stored before PUBACK (Rampart)" rampart-qos1-durable mosquitto-qos1-durable
  table "latency at 20,000 msg/s, QoS 0 (Mosquitto as configured by default)" rampart-latency mosquitto-latency
  table "latency at 20,000 msg/s, QoS 0 (Mosquitto with set_tcp_nodelay true)" rampart-latency mosquitto-latency-nodelay
  table "idle: 10,000 connections, CONNECT + SUBSCRIBE each" rampart-idle mosquitto-idle
  echo
  echo "Summary lines:"
  grep -hE "^mqtt-[a-z0-9]+ \(" "$OUT"/*.txt 2>/dev/null | sed 's/^/  /'
} | tee "$OUT/summary.txt"
