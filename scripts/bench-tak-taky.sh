#!/usr/bin/env bash
# TAK load against taky (PyPI `taky` 0.10, a small Python TAK server), with the same load
# generator as scripts/bench-tak.sh (`rampart bench tak-*`). Run that script first for
# Rampart's and FreeTAKServer's figures; this one adds a third column's worth of rows.
#
#   scripts/bench-tak-taky.sh        # about 5 minutes
#
# taky runs plain TCP on a free loopback port, one fresh process and root directory per
# scenario, and is stopped at the end whatever happens. Figures go to target/bench-tak/taky-*.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=target/bench-tak
SECS=${TAK_SECONDS:-10}
VENV=target/taky-venv
mkdir -p "$OUT" target/tmp
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

PGID=""
cleanup() { [ -n "$PGID" ] && kill -TERM -- "-$PGID" 2>/dev/null; sleep 1; [ -n "$PGID" ] && kill -KILL -- "-$PGID" 2>/dev/null; PGID=""; }
trap cleanup EXIT INT TERM

echo "== building (release)"
cargo build --release -p rampart >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
BIN=target/release/rampart

if [ ! -x "$VENV/bin/taky" ]; then
  echo "== installing taky 0.10 into $VENV"
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q "taky==0.10" || { echo "taky did not install"; exit 1; }
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_taky() { # LABEL: a fresh taky on a free port; sets T_PID and T_ADDR
  local dir port
  dir=$(mktemp -d -p target/tmp taky.XXXXXX)
  port=$(free_port)
  printf '[taky]\nhostname = localhost\nnode_id = TAKY\nbind_ip = 127.0.0.1\nroot_dir = %s\n\n[cot_server]\nport = %s\n\n[dp_server]\nupload_path = %s/dp\n\n[ssl]\nenabled = false\n' \
    "$PWD/$dir" "$port" "$PWD/$dir" >"$dir/taky.conf"
  setsid "$VENV/bin/taky" -c "$dir/taky.conf" -l warning >"$OUT/$1-server.log" 2>&1 &
  T_PID=$!
  PGID=$T_PID
  T_ADDR="127.0.0.1:$port"
  for _ in $(seq 1 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1).close()" 2>/dev/null && return 0
    kill -0 "$T_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "taky did not start:"; tail -20 "$OUT/$1-server.log"; return 1
}

run() { # LABEL SCENARIO [ENV=VALUE ...]
  local label=$1 scenario=$2
  shift 2
  start_taky "$label" || return 1
  echo "-- $label"
  env RAMPART_TAK_TARGET="$T_ADDR" RAMPART_TAK_PID="$T_PID" RAMPART_TAK_LABEL="$label" \
    RAMPART_TAK_SECONDS="$SECS" "$@" timeout 600 "$BIN" bench "tak-$scenario" >"$OUT/$label.txt" 2>&1
  local rc=$?
  [ $rc -eq 0 ] || echo "   (exit $rc: $(tail -1 "$OUT/$label.txt"))"
  grep -E "^delivered|latency p50|latency p99 |^echoes|sent/s|per idle|disconnected|opened|server CPU|server RSS \(" "$OUT/$label.txt" | sed 's/^/   /' || true
  cleanup
}

echo "== taky 0.10"
run taky-fanout fanout RAMPART_TAK_CLIENTS=100 RAMPART_TAK_RATE=20000
run taky-fanout-s fanout RAMPART_TAK_CLIENTS=10 RAMPART_TAK_RATE=50 RAMPART_TAK_SETTLE_MS=3000
run taky-ingest ingest RAMPART_TAK_CLIENTS=10
run taky-ingest-s ingest RAMPART_TAK_CLIENTS=10 RAMPART_TAK_RATE=50
run taky-idle-s idle RAMPART_TAK_CLIENTS=1000
run taky-idle-nosa idle RAMPART_TAK_CLIENTS=10000 RAMPART_TAK_IDLE_SA=0 RAMPART_TAK_SETTLE_MAX_S=60
