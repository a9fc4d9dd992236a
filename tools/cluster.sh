#!/usr/bin/env bash
# A local cluster on loopback, without Docker: one redis-server, three
# signal-node processes sharing it, and HAProxy balancing WebSockets over the
# nodes on one port.
#
#   tools/cluster.sh start     build what is missing, start everything, print two URLs
#   tools/cluster.sh stop      stop everything (SIGTERM, then SIGKILL after a deadline)
#   tools/cluster.sh restart   stop, then start
#   tools/cluster.sh status    what runs (exit 0: all, 3: nothing, 1: part of it)
#
# Settings (environment):
#   CLUSTER_PORT             the load balancer's port (default 8080)
#   CLUSTER_NODE_PORTS       the nodes' ports, one node each (default "8081 8082 8083")
#   CLUSTER_REDIS_PORT       redis-server's port (default 6380)
#   CLUSTER_DIR              pid files, logs, config (default ${XDG_RUNTIME_DIR:-/tmp}/signal-cluster)
#   CLUSTER_NODE_BIN         a node binary to use as is; without it, tools/build.sh builds build/
#   CLUSTER_TOKEN_BIN        signal-token (default: beside the node binary)
#   CLUSTER_START_TIMEOUT_S  how long each process may take to accept connections (default 15)
#   CLUSTER_STOP_TIMEOUT_S   how long stop waits after SIGTERM before SIGKILL (default 30)
#   SIGNAL_JWT_SECRET        the nodes' shared HS256 secret (default: a random one per start)
# Other SIGNAL_* variables (SIGNAL_LOG_LEVEL, SIGNAL_DRAIN_S...) reach every node.
# Everything listens on 127.0.0.1 only.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
HOST=127.0.0.1
DIR=${CLUSTER_DIR:-${XDG_RUNTIME_DIR:-/tmp}/signal-cluster}
START_TIMEOUT=${CLUSTER_START_TIMEOUT_S:-15}
STOP_TIMEOUT=${CLUSTER_STOP_TIMEOUT_S:-30}

log() { printf 'cluster: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

# --- processes --------------------------------------------------------------

# The program a component runs, to tell it from an unrelated process that got
# a recycled pid.
program_of() {
  case $1 in
  haproxy) echo haproxy ;;
  redis) echo redis-server ;;
  *) echo signal-node ;;
  esac
}

# Prints the pid of a component when it runs (a zombie has an empty cmdline).
running_pid() {
  local f=$DIR/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$(program_of "$1")" || return 1
  echo "$pid"
}

# Components that have a pid file, in stop order: balancer, nodes, Redis.
components() {
  local f name
  [ -f "$DIR/haproxy.pid" ] && echo haproxy
  for f in "$DIR"/node-*.pid; do
    [ -f "$f" ] || continue
    name=${f##*/}
    echo "${name%.pid}"
  done | sort -V
  [ -f "$DIR/redis.pid" ] && echo redis
  return 0
}

port_open() {
  # shellcheck disable=SC2016
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

# launch NAME COMMAND...: runs COMMAND in its own session (so that closing the
# terminal does not stop it), output to DIR/NAME.log; the shell writes its own
# pid, which exec hands on to COMMAND.
launch() {
  local name=$1
  shift
  rm -f "$DIR/$name.pid"
  # The lock (fd 9) stays with this script.
  # shellcheck disable=SC2016
  setsid sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$DIR/$name.pid" "$@" \
    </dev/null >"$DIR/$name.log" 2>&1 9>&- &
  local deadline=$((SECONDS + START_TIMEOUT))
  until [ -s "$DIR/$name.pid" ]; do
    [ $SECONDS -lt $deadline ] || die "$name did not start within ${START_TIMEOUT} s"
    sleep 0.02
  done
}

# wait_port NAME PORT: until PORT accepts connections, while NAME runs.
wait_port() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until port_open "$2"; do
    if ! running_pid "$1" >/dev/null; then
      log "$1 exited at start; the end of $DIR/$1.log:"
      tail -n 15 "$DIR/$1.log" >&2 || true
      exit 1
    fi
    [ $SECONDS -lt $deadline ] || die "$1 did not accept connections on $HOST:$2 within ${START_TIMEOUT} s (see $DIR/$1.log)"
    sleep 0.05
  done
  running_pid "$1" >/dev/null || die "$1 exited at start (port $2 taken by another process?); see $DIR/$1.log"
}

# node_ready PORT: the node there answers GET /readyz with 200 (it has reached Redis).
node_ready() {
  # shellcheck disable=SC2016
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "GET /readyz HTTP/1.0\r\n\r\n" >&3 && head -c 13 <&3' \
    "$HOST" "$1" 2>/dev/null | grep -q '^HTTP/1\.[01] 200'
}

# wait_ready NAME PORT: until the node is ready, so that HAProxy's first
# checks find every node up.
wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until node_ready "$2"; do
    running_pid "$1" >/dev/null || die "$1 exited at start; see $DIR/$1.log"
    [ $SECONDS -lt $deadline ] || die "$1 not ready within ${START_TIMEOUT} s (GET /readyz on $HOST:$2; see $DIR/$1.log)"
    sleep 0.05
  done
}

# stop_group NAME...: SIGTERM to each, wait (bounded) for all, then SIGKILL.
stop_group() {
  local name pid left=() deadline
  for name; do
    if pid=$(running_pid "$name"); then
      kill -TERM "$pid" 2>/dev/null || true
      left+=("$name")
    fi
  done
  deadline=$((SECONDS + STOP_TIMEOUT))
  while [ ${#left[@]} -gt 0 ]; do
    local still=()
    for name in "${left[@]}"; do
      running_pid "$name" >/dev/null && still+=("$name")
    done
    left=("${still[@]}")
    [ ${#left[@]} -gt 0 ] || break
    if [ $SECONDS -ge $deadline ]; then
      for name in "${left[@]}"; do
        if pid=$(running_pid "$name"); then
          log "$name (pid $pid) still runs ${STOP_TIMEOUT} s after SIGTERM: SIGKILL"
          kill -KILL "$pid" 2>/dev/null || true
        fi
      done
      deadline=$((SECONDS + 5))
      for name in "${left[@]}"; do
        while running_pid "$name" >/dev/null; do
          [ $SECONDS -lt $deadline ] || die "$name survives SIGKILL"
          sleep 0.05
        done
      done
      break
    fi
    sleep 0.05
  done
  for name; do
    rm -f "$DIR/$name.pid"
  done
}

stop_all() {
  local all=() nodes=() name
  mapfile -t all < <(components)
  for name in "${all[@]}"; do
    case $name in node-*) nodes+=("$name") ;; esac
  done
  # The balancer first, so that the nodes have no clients left to drain.
  [ -f "$DIR/haproxy.pid" ] && stop_group haproxy
  [ ${#nodes[@]} -gt 0 ] && stop_group "${nodes[@]}"
  [ -f "$DIR/redis.pid" ] && stop_group redis
  rm -f "$DIR/haproxy.sock"
  return 0
}

# --- configuration ----------------------------------------------------------

read_config() {
  LB_PORT=${CLUSTER_PORT:-8080}
  REDIS_PORT=${CLUSTER_REDIS_PORT:-6380}
  local ports=${CLUSTER_NODE_PORTS:-8081 8082 8083}
  read -r -a NODE_PORTS <<<"${ports//,/ }"
  [ ${#NODE_PORTS[@]} -ge 1 ] || die "CLUSTER_NODE_PORTS: no port given"
  local p seen=" "
  for p in "$LB_PORT" "$REDIS_PORT" "${NODE_PORTS[@]}"; do
    if ! [[ $p =~ ^[0-9]+$ ]] || [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then
      die "not a port: \"$p\""
    fi
    [[ $seen == *" $p "* ]] && die "port $p is given twice"
    seen+="$p "
  done
  PREFIX=${SIGNAL_PATH_PREFIX:-/api}
}

find_binaries() {
  if [ -n "${CLUSTER_NODE_BIN:-}" ]; then
    NODE_BIN=$CLUSTER_NODE_BIN
  else
    "$root/tools/build.sh" "$root/build"
    NODE_BIN=$root/build/bin/signal-node
  fi
  [ -x "$NODE_BIN" ] || die "$NODE_BIN is not an executable"
  TOKEN_BIN=${CLUSTER_TOKEN_BIN:-$(dirname "$NODE_BIN")/signal-token}
  HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
  REDIS_SERVER=$(command -v redis-server || echo /usr/bin/redis-server)
  [ -x "$HAPROXY" ] || die "haproxy is not installed: run tools/setup.sh (or apt-get install haproxy)"
  [ -x "$REDIS_SERVER" ] || die "redis-server is not installed: run tools/setup.sh"
}

write_haproxy_cfg() {
  local i stats=
  # A unix socket path is limited to 107 bytes.
  [ ${#DIR} -le 90 ] && stats="    stats socket $DIR/haproxy.sock mode 600 level user"
  {
    cat <<EOF
# Written by tools/cluster.sh at each start; edits are lost.
global
    log stdout format raw local0 info
$stats

defaults
    mode http
    log global
    option dontlognull
    # No query string in the log: it holds the token.
    log-format "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %tsc %ac/%fc/%bc/%sc/%rc %HM %{+Q}HPO"
    timeout connect 2s
    timeout http-request 10s
    timeout client 60s
    timeout server 60s
    # An upgraded WebSocket is a tunnel; the nodes ping idle clients every 25 s.
    timeout tunnel 1h
    timeout client-fin 10s
    timeout server-fin 10s
    # A draining node answers an upgrade with 503: try another node.
    retries 2
    retry-on conn-failure empty-response 503
    option redispatch 1

frontend signal
    bind $HOST:$LB_PORT
    default_backend nodes

backend nodes
    # WebSockets live long: send each new one to the node with the fewest.
    balance leastconn
    # Readiness: 503 while a node drains or has lost Redis.
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    default-server check inter 1s fall 2 rise 1
EOF
    for i in "${!NODE_PORTS[@]}"; do
      echo "    server node-$((i + 1)) $HOST:${NODE_PORTS[i]}"
    done
  } >"$DIR/haproxy.cfg"
}

# --- commands ---------------------------------------------------------------

prepare_dir() {
  if [ ! -d "$DIR" ]; then
    mkdir -p "$(dirname "$DIR")"
    mkdir -m 700 "$DIR"
  fi
  [ -O "$DIR" ] || die "$DIR belongs to another user: set CLUSTER_DIR"
  DIR=$(cd "$DIR" && pwd)
  exec 9>"$DIR/lock"
  flock -n 9 || die "another tools/cluster.sh is working on $DIR"
}

cmd_start() {
  read_config
  prepare_dir
  local name pid
  for name in $(components); do
    if pid=$(running_pid "$name"); then
      die "already running in $DIR ($name, pid $pid): tools/cluster.sh status, stop or restart"
    fi
    rm -f "$DIR/$name.pid"
  done
  find_binaries
  local p
  for p in "$LB_PORT" "$REDIS_PORT" "${NODE_PORTS[@]}"; do
    ! port_open "$p" || die "port $HOST:$p is in use (set CLUSTER_PORT, CLUSTER_NODE_PORTS or CLUSTER_REDIS_PORT)"
  done

  local secret=${SIGNAL_JWT_SECRET:-}
  [ -n "$secret" ] || secret=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
  (umask 077 && printf '%s\n' "$secret" >"$DIR/jwt-secret")
  {
    echo "haproxy $LB_PORT"
    for p in "${!NODE_PORTS[@]}"; do echo "node-$((p + 1)) ${NODE_PORTS[p]}"; done
    echo "redis $REDIS_PORT"
  } >"$DIR/ports"
  write_haproxy_cfg
  "$HAPROXY" -c -q -f "$DIR/haproxy.cfg" >&2 || die "HAProxy rejects $DIR/haproxy.cfg"

  # From here on, a failure stops what was started.
  trap 'log "start failed; stopping what was started (logs in $DIR)"; stop_all' EXIT

  launch redis "$REDIS_SERVER" --bind "$HOST" --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$DIR" --daemonize no --logfile ""
  wait_port redis "$REDIS_PORT"

  local i
  for i in "${!NODE_PORTS[@]}"; do
    launch "node-$((i + 1))" env -u SIGNAL_DEV -u SIGNAL_JWT_KEY_FILE \
      SIGNAL_JWT_ALG=HS256 SIGNAL_JWT_SECRET="$secret" SIGNAL_REDIS_URL="redis://$HOST:$REDIS_PORT" \
      "$NODE_BIN" --listen="$HOST:${NODE_PORTS[i]}" --node-id="node-$((i + 1))"
  done
  for i in "${!NODE_PORTS[@]}"; do
    wait_port "node-$((i + 1))" "${NODE_PORTS[i]}"
    wait_ready "node-$((i + 1))" "${NODE_PORTS[i]}"
  done

  launch haproxy "$HAPROXY" -db -f "$DIR/haproxy.cfg"
  wait_port haproxy "$LB_PORT"
  trap - EXIT

  print_welcome "$secret"
}

print_welcome() {
  local secret=$1 i
  echo "Local cluster running (state, logs: $DIR):"
  echo "  load balancer  ws://$HOST:$LB_PORT  (HAProxy, leastconn over ${#NODE_PORTS[@]} nodes)"
  for i in "${!NODE_PORTS[@]}"; do
    printf '  %-13s  %s:%s\n' "node-$((i + 1))" "$HOST" "${NODE_PORTS[i]}"
  done
  echo "  redis          redis://$HOST:$REDIS_PORT"
  if [ -x "$TOKEN_BIN" ]; then
    local room tok name
    room=$(cat /proc/sys/kernel/random/uuid)
    echo "Tokens valid for 24 h. Open:"
    for name in Alice Bob; do
      tok=$(SIGNAL_JWT_SECRET=$secret "$TOKEN_BIN" --sub "dev-${name,,}" --name "$name" --rooms "$room" --ttl 86400)
      printf '  %-5s ws://%s:%s%s/chat/realtime/%s?tk=%s\n' "$name" "$HOST" "$LB_PORT" "$PREFIX" "$room" "$tok"
    done
    [ "${SIGNAL_MEMBERSHIP:-token}" = token ] ||
      echo "  (membership redis: SADD the accounts dev-alice and dev-bob to the room's set)"
  fi
  echo "More tokens: SIGNAL_JWT_SECRET=\$(cat $DIR/jwt-secret) $TOKEN_BIN --sub ID --rooms ROOM"
  echo "Stop: ${CLUSTER_DIR:+CLUSTER_DIR=$DIR }$0 stop"
}

cmd_stop() {
  prepare_dir
  if [ -z "$(components)" ]; then
    echo "Nothing running in $DIR."
    return 0
  fi
  stop_all
  echo "Stopped (logs kept in $DIR)."
}

cmd_status() {
  [ -d "$DIR" ] || {
    echo "Nothing running ($DIR does not exist)."
    return 3
  }
  DIR=$(cd "$DIR" && pwd)
  local name port pid up=0 down=0 state
  if [ ! -f "$DIR/ports" ]; then
    echo "Nothing running in $DIR."
    return 3
  fi
  echo "Cluster in $DIR:"
  while read -r name port; do
    if pid=$(running_pid "$name"); then
      state="running  pid $pid"
      port_open "$port" || state+=", not accepting connections"
      up=$((up + 1))
    else
      state=stopped
      [ -f "$DIR/$name.pid" ] && state="dead (see $DIR/$name.log)"
      down=$((down + 1))
    fi
    printf '  %-8s %s:%-5s  %s\n' "$name" "$HOST" "$port" "$state"
  done <"$DIR/ports"
  # The nodes as the balancer sees them.
  if [ -S "$DIR/haproxy.sock" ] && [ -x /usr/bin/python3 ] && running_pid haproxy >/dev/null; then
    /usr/bin/python3 - "$DIR/haproxy.sock" <<'PY' || true
import csv, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
rows = list(csv.reader(data.decode().lstrip("# ").splitlines()))
head = rows[0]
for r in rows[1:]:
    d = dict(zip(head, r))
    if d.get("pxname") == "nodes" and d.get("svname") not in ("BACKEND", None):
        check = " ".join(x for x in (d.get("check_status"), d.get("check_code")) if x)
        check = "none yet" if check in ("", "INI") else check
        print(f"  balancer: {d['svname']} {d['status']} (last check: {check}), {d['scur']} connection(s)")
PY
  fi
  if [ $down -eq 0 ]; then return 0; fi
  if [ $up -eq 0 ]; then return 3; fi
  return 1
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
restart)
  cmd_stop
  exec 9>&-
  cmd_start
  ;;
status) cmd_status ;;
*) usage ;;
esac
