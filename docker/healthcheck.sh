#!/bin/bash
# signal-healthcheck [PATH]: GET PATH (default /healthz) on the node's admin port,
# from inside the container, with bash alone (no curl in the image). Exit 0 on
# HTTP 200; else 1, printing the status line and the node's one-line reason.
#   signal-healthcheck            liveness  (/healthz, the image's HEALTHCHECK)
#   signal-healthcheck /readyz    readiness (503 while draining or without Redis)
path=${1:-/healthz}
addr=${SIGNAL_ADMIN_LISTEN:-${SIGNAL_LISTEN:-0.0.0.0:8080}}
port=${addr##*:}
host=${addr%:*}
host=${host#[}
host=${host%]}
case $host in "" | 0.0.0.0 | "*") host=127.0.0.1 ;; ::) host=::1 ;; esac

if ! exec 3<>"/dev/tcp/$host/$port"; then
  echo "no connection to $host:$port"
  exit 1
fi
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nUser-Agent: signal-healthcheck\r\n\r\n' "$path" >&3
status=
IFS=$' \r' read -r -t 2 _ status _ <&3 || true
[ "$status" = 200 ] && exit 0
# The reason is the body's last line; the node closes after an HTTP/1.0 answer.
last=
n=0
while [ $n -lt 40 ] && IFS=$'\r' read -r -t 1 line <&3; do
  [ -n "$line" ] && last=$line
  n=$((n + 1))
done
[ -n "$line" ] && last=$line
echo "GET $path: ${status:-no answer} ${last}"
exit 1
