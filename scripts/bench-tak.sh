#!/usr/bin/env bash
# TAK load, side by side: Rampart's cot-tcp listener and FreeTAKServer (PyPI freetakserver
# 2.2.1, in its own venv under target/fts-venv), driven by the same load generator
# (`rampart bench tak-fanout | tak-ingest | tak-idle`, crates/app/bench/src/tak.rs).
#
#   scripts/bench-tak.sh            # everything (about 10 minutes)
#   TAK_SKIP_FTS=1 scripts/bench-tak.sh       # Rampart only (keeps FreeTAKServer's last figures)
#   TAK_SKIP_RAMPART=1 scripts/bench-tak.sh   # FreeTAKServer only (keeps Rampart's last figures)
#
# Scenarios (TAK routing is all-to-all: one event written to one client is one delivery):
#   fanout   100 clients, 20,000 PLI/s in total, everyone reads everyone     (issue target)
#   fanout-s 10 clients, 50 PLI/s in total (what FreeTAKServer can sustain)
#   ingest   10 clients streaming PLI for 100,000 distinct entities as fast as accepted
#   ingest-s 10 clients, 50 PLI/s in total
#   idle     10,000 connections, one SA each, then idle: server memory per connection
#   idle-s   1,000 connections
# Every server process is started by this script and stopped at the end, whatever happens.
# Figures go to target/bench-tak/*.txt; the table at the end compares them.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=target/bench-tak
SECS=${TAK_SECONDS:-10}
FTS_VENV=target/fts-venv
FTS_START_TIMEOUT=${TAK_FTS_START_TIMEOUT:-90}
mkdir -p "$OUT"
# A skipped server keeps its last figures in the table.
[ -n "${TAK_SKIP_RAMPART:-}" ] || rm -f "$OUT"/rampart-*.txt "$OUT"/rampart-*.reasons
[ -n "${TAK_SKIP_FTS:-}" ] || rm -f "$OUT"/fts-*.txt "$OUT"/fts-*.reasons
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt 20100 ]; then
  echo "note: open-file limit is $(ulimit -n); the 10,000-connection idle test needs about 10,100" >&2
fi

PGIDS=()
cleanup() {
  for g in "${PGIDS[@]:-}"; do
    [ -n "$g" ] || continue
    kill -TERM -- "-$g" 2>/dev/null || true
  done
  sleep 1
  for g in "${PGIDS[@]:-}"; do
    [ -n "$g" ] || continue
    kill -KILL -- "-$g" 2>/dev/null || true
  done
  PGIDS=()
}
trap cleanup EXIT INT TERM

stop_group() { # PGID: stop one server we started
  kill -TERM -- "-$1" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 -- "-$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL -- "-$1" 2>/dev/null || true
}

echo "== building (release)"
cargo build --release -p rampart >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
BIN=target/release/rampart

echo "== machine"
{
  echo "cpus: $(nproc)  memory: $(free -m | awk '/Mem:/ {print $2}') MiB  kernel: $(uname -r)"
  echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "busiest other processes:"
  ps -eo pcpu,ni,comm --sort=-pcpu | head -6
} | tee "$OUT/machine.txt"

# ---------------------------------------------------------------------------------------------
# Rampart: a fresh node per scenario (so memory and the picture start from zero)
# ---------------------------------------------------------------------------------------------
R_PID=""; R_COT=""; R_HTTP=""
start_rampart() {
  local data log
  data=$(mktemp -d -p target/tmp rampart-tak.XXXXXX 2>/dev/null || mktemp -d)
  log="$OUT/rampart-server-$1.log"
  # Every load-generator connection comes from 127.0.0.1: lift the per-address cap.
  printf '[cot]\nmax_connections_per_peer = 30000\n' >"$data.toml"
  setsid "$BIN" serve --data "$data" --config "$data.toml" --listen cot-tcp=127.0.0.1:0 \
    --listen http=127.0.0.1:0 >"$log" 2>&1 &
  R_PID=$!
  PGIDS+=("$R_PID")
  R_COT=""; R_HTTP=""
  for _ in $(seq 1 100); do
    R_COT=$(sed -n 's/^rampart: listening cot-tcp \(.*\)$/\1/p' "$log" | head -1)
    R_HTTP=$(sed -n 's/^rampart: listening http \(.*\)$/\1/p' "$log" | head -1)
    [ -n "$R_COT" ] && [ -n "$R_HTTP" ] && return 0
    kill -0 "$R_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "rampart did not start:"; tail -20 "$log"; return 1
}

bench() { # LABEL SCENARIO TARGET PID [ENV=VALUE ...]: one run of the generator
  local label=$1 scenario=$2 target=$3 pid=$4
  shift 4
  echo "-- $label"
  env RAMPART_TAK_TARGET="$target" RAMPART_TAK_PID="$pid" RAMPART_TAK_LABEL="$label" \
    RAMPART_TAK_SECONDS="$SECS" "$@" \
    timeout 600 "$BIN" bench "tak-$scenario" >"$OUT/$label.txt" 2>&1
  local rc=$?
  [ $rc -eq 0 ] || echo "   (exit $rc: $(tail -1 "$OUT/$label.txt"))"
  grep -E "deliver|latency p99 |sent/s|accepted/s|per idle|disconnected|opened" "$OUT/$label.txt" \
    | sed 's/^/   /' || true
}

rampart_run() { # LABEL SCENARIO [ENV...]
  local label=$1 scenario=$2
  shift 2
  start_rampart "$label" || return 1
  bench "$label" "$scenario" "$R_COT" "$R_PID" RAMPART_METRICS_URL="http://$R_HTTP/metrics" "$@"
  # Why the server closed connections, from its own counters.
  curl -s "http://$R_HTTP/metrics" 2>/dev/null | sed -n 's/^rampart_cot_disconnects_total{reason="\(.*\)"} \(.*\)$/\1=\2/p' \
    | tr '\n' ' ' >"$OUT/$label.reasons"
  [ -s "$OUT/$label.reasons" ] && echo "   server disconnect reasons: $(cat "$OUT/$label.reasons")"
  stop_group "$R_PID"
}

echo "== Rampart"
[ -n "${TAK_SKIP_RAMPART:-}" ] && rampart_run() { echo "-- $1 skipped (TAK_SKIP_RAMPART)"; }
rampart_run rampart-fanout fanout RAMPART_TAK_CLIENTS=100 RAMPART_TAK_RATE=20000
rampart_run rampart-fanout-s fanout RAMPART_TAK_CLIENTS=10 RAMPART_TAK_RATE=50 RAMPART_TAK_SETTLE_MS=3000
rampart_run rampart-ingest ingest RAMPART_TAK_CLIENTS=10
rampart_run rampart-ingest-s ingest RAMPART_TAK_CLIENTS=10 RAMPART_TAK_RATE=50
rampart_run rampart-idle idle RAMPART_TAK_CLIENTS=10000
rampart_run rampart-idle-s idle RAMPART_TAK_CLIENTS=1000
rampart_run rampart-idle-nosa idle RAMPART_TAK_CLIENTS=10000 RAMPART_TAK_IDLE_SA=0
# Where Rampart still delivers everything on this machine (a quarter of the target rate).
rampart_run rampart-fanout-q fanout RAMPART_TAK_CLIENTS=100 RAMPART_TAK_RATE=5000

# ---------------------------------------------------------------------------------------------
# FreeTAKServer 2.2.1
# ---------------------------------------------------------------------------------------------
FTS_OK=0
FTS_NOTE=""
F_PID=""
FTS_FRESH=0
fts_install() {
  if [ -x "$FTS_VENV/bin/python" ] && "$FTS_VENV/bin/python" -c 'import FreeTAKServer' 2>/dev/null; then
    return 0
  fi
  echo "installing freetakserver 2.2.1 into $FTS_VENV"
  python3 -m venv "$FTS_VENV" >"$OUT/fts-install.log" 2>&1 &&
    "$FTS_VENV/bin/pip" install 'freetakserver==2.2.1' 'opentelemetry-api==1.25.0' \
      'opentelemetry-sdk==1.25.0' >>"$OUT/fts-install.log" 2>&1
}
fts_start() {
  local dir="$PWD/target/fts-run"
  mkdir -p "$dir/data"
  if ss -ltn 2>/dev/null | grep -q '127.0.0.1:8087 \|0.0.0.0:8087 \|:8080 '; then
    FTS_NOTE="port 8087 or 8080 is already in use"; return 1
  fi
  rm -f "$dir/data/FTSDataBase.db" # a fresh user/client database per start
  # FreeTAKServer keeps state outside FTS_DB_PATH too. digitalpy's IAM pickles every
  # connection into its package directory and only removes one on a clean disconnect, so a
  # server that was stopped keeps its dead connections; the next start sends to them and
  # fails ("a bytes-like object is required, not 'NoneType'") and relays nothing. Its other
  # databases live under /opt/fts. Start from none of it.
  local iam
  for iam in "$FTS_VENV"/lib/python3*/site-packages/digitalpy/core/IAM/persistence; do
    [ -d "$iam" ] && rm -f "$iam/connections.json"
  done
  rm -f /opt/fts/FTSDataBase.db /opt/fts/CoTManagementRecords.db /opt/fts/MissionRecords.db \
    /opt/fts/ExCheckRecords.db
  # FTS_DB_PATH is honoured; the rest of its state still goes to /opt/fts.
  (cd "$dir" && FTS_FIRST_START=false FTS_DB_PATH="$dir/data/FTSDataBase.db" \
    exec setsid "../fts-venv/bin/python" -m FreeTAKServer.controllers.services.FTS \
      -CoTIP 127.0.0.1 -CoTPort 8087 -SSLCoTIP 127.0.0.1 -DataPackageIP 127.0.0.1 \
      -SSLDataPackageIP 127.0.0.1 -RestAPIIP 127.0.0.1 -AutoStart True) \
    >"$OUT/fts-server.log" 2>&1 &
  F_PID=$!
  PGIDS+=("$F_PID")
  for _ in $(seq 1 "$FTS_START_TIMEOUT"); do
    if ss -ltn 2>/dev/null | grep -q '127.0.0.1:8087 '; then
      # The port opens before routing works (it is still busy starting): ready once two
      # probe clients see each other's events.
      local i
      for i in $(seq 1 12); do
        if env RAMPART_TAK_TARGET=127.0.0.1:8087 RAMPART_TAK_CLIENTS=2 RAMPART_TAK_RATE=4 \
          RAMPART_TAK_SECONDS=1 RAMPART_TAK_SETTLE_MS=1000 RAMPART_TAK_DRAIN_MS=15000 \
          timeout 60 "$BIN" bench tak-fanout 2>/dev/null | grep -Eq '^delivered +100\.000'; then
          return 0
        fi
        sleep 5
      done
      FTS_NOTE="FreeTAKServer listens but does not relay events (probe failed for ~2 min)"
      return 1
    fi
    kill -0 "$F_PID" 2>/dev/null || break
    sleep 1
  done
  FTS_NOTE="FreeTAKServer did not listen on 127.0.0.1:8087 within ${FTS_START_TIMEOUT}s (see $OUT/fts-server.log)"
  tail -15 "$OUT/fts-server.log"
  stop_group "$F_PID"
  return 1
}
fts_run() { # LABEL SCENARIO [ENV...]: a fresh FreeTAKServer per scenario, like Rampart
  local label=$1 scenario=$2
  shift 2
  if [ "$FTS_FRESH" = 1 ] && kill -0 "$F_PID" 2>/dev/null; then
    FTS_FRESH=0
  else
    [ -z "$F_PID" ] || stop_group "$F_PID"
    sleep 1
    fts_start || { echo "   $FTS_NOTE"; return 1; }
  fi
  bench "$label" "$scenario" 127.0.0.1:8087 "$F_PID" "$@"
  stop_group "$F_PID"
  F_PID=""
}

if [ -n "${TAK_SKIP_FTS:-}" ]; then
  FTS_NOTE="skipped (TAK_SKIP_FTS)"
elif ! fts_install; then
  FTS_NOTE="FreeTAKServer failed to install (see $OUT/fts-install.log)"
  tail -15 "$OUT/fts-install.log"
else
  echo "== FreeTAKServer 2.2.1 (a fresh start per scenario, ~30 s each)"
  if fts_start; then
    FTS_OK=1
    FTS_FRESH=1
    echo "FTS process tree: $(ps --no-headers -o pid --ppid "$F_PID" | wc -l) children of $F_PID"
    fts_run fts-fanout-s fanout RAMPART_TAK_CLIENTS=10 RAMPART_TAK_RATE=50 RAMPART_TAK_SETTLE_MS=3000 RAMPART_TAK_DRAIN_MS=15000
    fts_run fts-ingest-s ingest RAMPART_TAK_CLIENTS=10 RAMPART_TAK_RATE=50
    fts_run fts-idle-s idle RAMPART_TAK_CLIENTS=1000 RAMPART_TAK_SETTLE_MAX_S=90
    fts_run fts-fanout fanout RAMPART_TAK_CLIENTS=100 RAMPART_TAK_RATE=20000 RAMPART_TAK_SETTLE_MS=5000 RAMPART_TAK_DRAIN_MS=15000
    fts_run fts-ingest ingest RAMPART_TAK_CLIENTS=10
    fts_run fts-idle idle RAMPART_TAK_CLIENTS=10000 RAMPART_TAK_SETTLE_MAX_S=120
    fts_run fts-idle-nosa idle RAMPART_TAK_CLIENTS=10000 RAMPART_TAK_IDLE_SA=0 RAMPART_TAK_SETTLE_MAX_S=120
  fi
fi
[ -z "$FTS_NOTE" ] || echo "FreeTAKServer: $FTS_NOTE"
echo "Other TAK servers: not measured (only FreeTAKServer is set up by this script; the"
echo "official TAK Server is a registration-gated download)."

cleanup

# ---------------------------------------------------------------------------------------------
# Side by side
# ---------------------------------------------------------------------------------------------
table() { # TITLE RAMPART_FILE FTS_FILE
  local title=$1 r="$OUT/$2.txt" f="$OUT/$3.txt"
  [ -s "$r" ] || [ -s "$f" ] || return 0
  echo
  echo "### $title"
  awk -v R="$r" -v F="$f" '
    function load(file, arr, keys, n,   line, name, val, unit, m) {
      n = 0
      while ((getline line < file) > 0) {
        if (line ~ /^==/ || line ~ /^\s*$/) continue
        if (match(line, /  +-?[0-9.]+(e[+-]?[0-9]+)?( .*)?$/) == 0) {
          if (match(line, /  +(NaN|inf)( .*)?$/) == 0) continue
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
      nr = load(R, rv, rk); nf = load(F, fv, fk)
      printf "%-38s %16s %16s %10s  %s\n", "figure", "Rampart", "FreeTAKServer", "R/FTS", "unit"
      for (i = 1; i <= nr; i++) { order[++n] = rk[i]; seen[rk[i]] = 1 }
      for (i = 1; i <= nf; i++) if (!(fk[i] in seen)) order[++n] = fk[i]
      for (i = 1; i <= n; i++) {
        k = order[i]
        a = (k in rv) ? rv[k] : "-"; b = (k in fv) ? fv[k] : "-"
        ratio = "-"
        if (a != "-" && b != "-" && b + 0 != 0 && a ~ /^-?[0-9.]+$/ && b ~ /^-?[0-9.]+$/)
          ratio = sprintf("%.2f", a / b)
        printf "%-38s %16s %16s %10s  %s\n", k, a, b, ratio, units[k]
      }
    }'
}

{
  echo
  echo "==================== TAK load: Rampart vs FreeTAKServer 2.2.1 ===================="
  cat "$OUT/machine.txt"
  [ $FTS_OK -eq 1 ] || echo "FreeTAKServer: ${FTS_NOTE:-not run}; only Rampart's figures are shown."
  table "fan-out, issue target: 100 clients, 20,000 PLI/s total" rampart-fanout fts-fanout
  table "fan-out at FreeTAKServer's scale: 10 clients, 50 PLI/s total" rampart-fanout-s fts-fanout-s
  table "ingest, as fast as accepted: 10 clients" rampart-ingest fts-ingest
  table "ingest at FreeTAKServer's scale: 10 clients, 50 PLI/s total" rampart-ingest-s fts-ingest-s
  table "idle: 10,000 connections, one SA each" rampart-idle fts-idle
  table "idle: 1,000 connections, one SA each" rampart-idle-s fts-idle-s
  table "idle: 10,000 connections that send nothing" rampart-idle-nosa fts-idle-nosa
  table "fan-out at a quarter of the target: 100 clients, 5,000 PLI/s (Rampart only)" rampart-fanout-q none
  echo
  for f in "$OUT"/rampart-*.reasons; do
    [ -s "$f" ] && echo "Rampart closed connections in $(basename "$f" .reasons): $(cat "$f")"
  done
} | tee "$OUT/summary.txt"
