# bench/lib.sh — shared by bench/run and bench/compare-peers (sourced, not run).
#
# Knobs, ports, child-process bookkeeping (every child is killed on exit), the
# scenario runners that call target/release/loadgen and startup-probe, and
# the final table. Everything binds and connects to 127.0.0.1 only.
# shellcheck shell=bash

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
BIN="$ROOT/target/release"

# ---- Knobs (environment) ----------------------------------------------------------
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-1}
STREAM_RATE=${BENCH_STREAM_RATE:-20}
CONCURRENT_STREAMS=${BENCH_CONCURRENT_STREAMS:-1000}
STREAMS_DURATION=${BENCH_STREAMS_DURATION:-5}
STARTUP_RUNS=${BENCH_STARTUP_RUNS:-5}
READY_PATH=${BENCH_READY_PATH:-}
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results}
NPROC=$(nproc 2>/dev/null || echo 1)
DEFAULT_THREADS=$((NPROC >= 8 ? NPROC / 4 : 1))
LOADGEN_THREADS=${BENCH_LOADGEN_THREADS:-$DEFAULT_THREADS}
MOCK_THREADS=${BENCH_MOCK_THREADS:-$DEFAULT_THREADS}
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# The mock upstream's streamed completion: 100 content chunks, 10 ms apart.
MOCK_CHUNKS=100
MOCK_CHUNK_INTERVAL_MS=10

# ---- Ports -------------------------------------------------------------------------------
MOCK_PORT=4201            # every gateway's upstream base_url points here
BARE_PORT=4202            # bare proxy under load
BARE_PROBE_PORT=4203      # bare proxy start-up probe
DIRECT_MODEL=gpt-4o-mini  # model sent straight to the mock and through the bare proxy

# Extra request headers for the target being measured (set per target).
LOAD_HEADERS=()
# The API the target's requests speak: openai (chat completions) or anthropic (Messages);
# passed to loadgen as --dialect and used by chat_ok. Set per target.
LOAD_DIALECT=openai
ANTHROPIC_VERSION=2023-06-01

log() { printf '[bench] %s\n' "$*" >&2; }
warn() { printf '[bench] WARNING: %s\n' "$*" >&2; }

# ---- Child processes -------------------------------------------------------------------------
PIDS=()
MOCK_PID=
stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
# forget_pid PID: stop it and drop it from the cleanup list.
forget_pid() {
  local pid=$1 kept=() p
  stop_pid "$pid"
  for p in "${PIDS[@]}"; do
    if [[ "$p" != "$pid" ]]; then kept+=("$p"); fi
  done
  PIDS=("${kept[@]}")
}
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# port_free PORT: true when nothing accepts connections on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# require_free_ports PORT...: abort when any is taken.
require_free_ports() {
  local port
  for port in "$@"; do
    if ! port_free "$port"; then
      echo "127.0.0.1:$port is already in use; stop whatever listens there first" >&2
      exit 1
    fi
  done
}

# wait_ok SECONDS URL [curl args...]: poll every 50 ms until URL answers 2xx.
wait_ok() {
  local seconds=$1 url=$2
  shift 2
  local tries=$((seconds * 20))
  for _ in $(seq 1 "$tries"); do
    if curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  return 1
}

# chat_ok SECONDS PORT MODEL: one small non-streaming request in LOAD_DIALECT (with
# LOAD_HEADERS) answers 2xx within SECONDS.
chat_ok() {
  local path body args=(-X POST -H 'content-type: application/json') h
  case "$LOAD_DIALECT" in
    anthropic)
      path=/v1/messages
      body="{\"model\":\"$3\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":\"ping\"}]}"
      args+=(-H "anthropic-version: $ANTHROPIC_VERSION")
      ;;
    *)
      path=/v1/chat/completions
      body="{\"model\":\"$3\",\"messages\":[{\"role\":\"user\",\"content\":\"ping\"}]}"
      ;;
  esac
  args+=(-d "$body")
  for h in "${LOAD_HEADERS[@]}"; do args+=(-H "$h"); done
  wait_ok "$1" "http://127.0.0.1:$2$path" "${args[@]}"
}

# credential_header DIALECT KEY: the header a client of DIALECT sends its API key in.
credential_header() {
  case "$1" in
    anthropic) printf 'x-api-key: %s' "$2" ;;
    *) printf 'authorization: Bearer %s' "$2" ;;
  esac
}

# fresh_database CONFIG: deletes the SQLite database of CONFIG's `database.url` (and its WAL
# files), so that a target sharing a config with one measured before it starts from an empty
# request log as that one did (the writer's cost grows with the log). Only files under
# bench/results/ are ever deleted.
fresh_database() {
  local path
  path=$(sed -n 's|^[[:space:]]*url:[[:space:]]*"\{0,1\}sqlite://\([^"?]*\).*|\1|p' "$1" | head -n 1)
  case "$path" in
    bench/results/* | "$RESULTS"/*) rm -f "$path" "$path-wal" "$path-shm" "$path-journal" ;;
  esac
}

# provision_key CONFIG PORT ADMIN_KEY: starts the gateway once, creates a virtual key with an
# RPM and a TPM limit and a monthly budget (high enough never to trip during the run, so that
# every request is checked and counted against all three), prints the key, stops the gateway.
# The key lives in the config's database, so the measured runs start with it.
provision_key() {
  local config=$1 port=$2 admin=$3 pid key
  redis-cli -h 127.0.0.1 -p 6379 --scan --pattern 'switchyard-bench:*' 2>/dev/null \
    | xargs -r redis-cli -h 127.0.0.1 -p 6379 DEL >/dev/null 2>&1 || true
  "$BIN/switchyard" serve --config "$config" >>"$RESULTS/provision.log" 2>&1 &
  pid=$!
  if ! wait_ok 15 "http://127.0.0.1:$port/health/ready"; then
    stop_pid "$pid"
    return 1
  fi
  key=$(curl -fsS -X POST "http://127.0.0.1:$port/admin/keys" -H "authorization: Bearer $admin" \
    -H 'content-type: application/json' \
    -d '{"name":"bench","limits":{"rpm":1000000000,"tpm":1000000000000,"budgets":[{"usd":1000000000,"period":"month"}]}}' \
    | sed -n 's/.*"key":"\(sk-sy-[A-Za-z0-9]*\)".*/\1/p')
  stop_pid "$pid"
  [[ -n "$key" ]] && printf '%s' "$key"
}

# ---- Set-up ------------------------------------------------------------------------------------
# prepare_results: empty the results directory and raise the open-file limit.
prepare_results() {
  mkdir -p "$RESULTS"
  rm -f "$RESULTS"/*.json "$RESULTS"/*.log "$RESULTS"/*.md "$RESULTS"/*.txt "$RESULTS"/*.db "$RESULTS"/*.db-*
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  if (($(ulimit -n) < 2 * CONCURRENT_STREAMS + 256)); then
    warn "open-file limit $(ulimit -n) is low for $CONCURRENT_STREAMS concurrent streams"
  fi
}

# require_tools: the bench binaries exist.
require_tools() {
  local tool
  for tool in mock-upstream bare-proxy loadgen startup-probe report; do
    if [[ ! -x "$BIN/$tool" ]]; then
      echo "missing $BIN/$tool: run cargo build --release -p switchyard-bench" >&2
      exit 1
    fi
  done
}

# cpu_busy_percent: share of all CPUs busy over one second (other processes,
# since nothing of ours runs yet).
cpu_busy_percent() {
  local a b
  a=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6}' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {
    split(a, x, " "); split(b, y, " ");
    busy = y[1] - x[1]; idle = y[2] - x[2];
    printf "%d", (busy + idle > 0) ? 100 * busy / (busy + idle) : 0 }'
}

# write_machine: machine and run description into $RESULTS/machine.txt.
write_machine() {
  local cpu_model revision busy
  busy=$(cpu_busy_percent)
  if ((busy > 10)); then
    warn "the machine is ${busy}% busy before the benchmark starts; absolute figures will be noisy"
  fi
  cpu_model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)
  revision=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commit")
  {
    echo "- machine: ${NPROC} CPUs, ${cpu_model:-unknown CPU}, Linux $(uname -r), $(awk '/MemTotal/ {printf "%.1f GB RAM", $2 / 1048576}' /proc/meminfo)"
    echo "- run: $(date -u '+%Y-%m-%d %H:%M UTC'), revision ${revision}, ${DURATION} s measured + ${WARMUP} s warm-up per scenario, loadgen/mock ${LOADGEN_THREADS}/${MOCK_THREADS} threads, CPU ${busy}% busy before start (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  } >"$RESULTS/machine.txt"
}

# start_mock: the mock upstream on MOCK_PORT; sets MOCK_PID.
start_mock() {
  log "starting mock-upstream on 127.0.0.1:$MOCK_PORT"
  ${LOAD_PIN:-} "$BIN/mock-upstream" --listen "127.0.0.1:$MOCK_PORT" --threads "$MOCK_THREADS" \
    --chunks "$MOCK_CHUNKS" --chunk-interval-ms "$MOCK_CHUNK_INTERVAL_MS" 2>>"$RESULTS/mock-upstream.log" &
  MOCK_PID=$!
  PIDS+=("$MOCK_PID")
  if ! wait_ok 15 "http://127.0.0.1:$MOCK_PORT/v1/models"; then
    echo "mock-upstream did not come up (see $RESULTS/mock-upstream.log)" >&2
    exit 1
  fi
}

# ---- Scenario runners -------------------------------------------------------------------------------
# load SCENARIO TARGET PORT MODEL PID [loadgen args...]: one loadgen run into
# $RESULTS/SCENARIO-TARGET.json, watching process PID.
load() {
  local scenario=$1 target=$2 port=$3 model=$4 pid=$5 h
  shift 5
  local args=(--url "http://127.0.0.1:$port" --model "$model" --dialect "$LOAD_DIALECT"
    --threads "$LOADGEN_THREADS" --clk-tck "$CLK_TCK" --watch-pid "$pid" --warmup "$WARMUP"
    --label "$scenario-$target")
  for h in "${LOAD_HEADERS[@]}"; do args+=(--header "$h"); done
  log "  $scenario"
  if ! "$BIN/loadgen" "${args[@]}" "$@" >"$RESULTS/$scenario-$target.json" 2>>"$RESULTS/loadgen.log"; then
    warn "$scenario against $target had no successful request (see $RESULTS/$scenario-$target.json)"
  fi
  sleep 0.5
}

# run_scenarios TARGET PORT MODEL PID SCENARIO...: scenarios are open500,
# open2000, closed64, stream, streams1000 and hits50 (see bench/README.md).
run_scenarios() {
  local target=$1 port=$2 model=$3 pid=$4 scenario
  shift 4
  log "$target (127.0.0.1:$port, $LOAD_DIALECT, model $model, pid $pid)"
  for scenario in "$@"; do
    case "$scenario" in
      open500) load open500 "$target" "$port" "$model" "$pid" --mode open --rate 500 --duration "$DURATION" ;;
      open2000) load open2000 "$target" "$port" "$model" "$pid" --mode open --rate 2000 --duration "$DURATION" ;;
      closed64) load closed64 "$target" "$port" "$model" "$pid" --mode closed --connections 64 --duration "$DURATION" ;;
      stream) load stream "$target" "$port" "$model" "$pid" --mode open --rate "$STREAM_RATE" --stream \
        --duration "$DURATION" ;;
      hits50) load hits50 "$target" "$port" "$model" "$pid" --mode open --rate 500 --unique-percent 50 \
        --duration "$DURATION" ;;
      streams1000) load streams1000 "$target" "$port" "$model" "$pid" \
        --concurrent-streams "$CONCURRENT_STREAMS" --duration "$STREAMS_DURATION" ;;
      *) warn "unknown scenario $scenario" ;;
    esac
  done
}

# startup TARGET ADDR MODEL -- COMMAND...: start-up time and idle RSS, median
# of STARTUP_RUNS starts, into $RESULTS/startup-TARGET.json.
startup() {
  local target=$1 addr=$2 model=$3 h
  shift 4
  local args=(--addr "$addr" --model "$model" --runs "$STARTUP_RUNS" --label "startup-$target"
    --log "$RESULTS/startup-$target.log")
  for h in "${LOAD_HEADERS[@]}"; do args+=(--header "$h"); done
  if [[ -n "$READY_PATH" ]]; then args+=(--ready-path "$READY_PATH"); fi
  log "  start-up x$STARTUP_RUNS"
  if ! "$BIN/startup-probe" "${args[@]}" -- "$@" >"$RESULTS/startup-$target.json"; then
    warn "start-up probe of $target never got a 2xx (see $RESULTS/startup-$target.log)"
  fi
}

# print_table TITLE TARGET... [-- report args...]: machine lines, the table,
# the legend; also saved as $RESULTS/summary.md.
print_table() {
  local title=$1 targets=() extra=()
  shift
  while (($#)); do
    if [[ "$1" == -- ]]; then
      shift
      extra=("$@")
      break
    fi
    targets+=("$1")
    shift
  done
  {
    echo "## $title"
    echo
    cat "$RESULTS/machine.txt"
    echo
    "$BIN/report" --results "$RESULTS" --targets "$(IFS=,; echo "${targets[*]}")" "${extra[@]}"
    echo
    echo "Latency cells: value (added vs direct; added vs bare proxy). Throughput and CPU cells: value (× direct; × bare proxy)."
    echo "✔/✘: target met or missed (bench/README.md). Raw JSON: ${RESULTS#"$ROOT"/}/."
  } | tee "$RESULTS/summary.md"
}
