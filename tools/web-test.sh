#!/usr/bin/env bash
# Runs the browser tests (web/test/e2e/: chromium pages in calls across
# several nodes) inside a new network namespace that has only loopback, so
# that nothing in them can reach, or depend on, any other network.
#   tools/web-test.sh              against build/bin (or SIGNAL_NODE_BIN / SIGNAL_TOKEN_BIN)
#   tools/web-test.sh <args>       extra arguments go to `node --test`, e.g. --test-name-pattern=drain
# As root (CI) it uses `unshare -n`; otherwise `unshare -rn`, a user namespace
# where this user is root (the kernel must allow unprivileged user namespaces).
# Screenshots go to SIGNAL_ARTIFACTS_DIR (default web/test-artifacts/, ignored by git).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export SIGNAL_NODE_BIN=${SIGNAL_NODE_BIN:-$root/build/bin/signal-node}
export SIGNAL_TOKEN_BIN=${SIGNAL_TOKEN_BIN:-$root/build/bin/signal-token}
if [ ! -d "$root/web/node_modules/playwright-core" ]; then
  echo "web-test: web/node_modules is missing: run tools/setup.sh (or npm ci in web/)" >&2
  exit 1
fi
ns=(unshare -n)
[ "$(id -u)" -eq 0 ] || ns=(unshare -rn)
# The test runner's own concurrency is left alone: there is one test file, and
# its tests run one after the other (each starts its own nodes and pages).
# shellcheck disable=SC2016 # $1 and $@ are the inner shell's, expanded in the namespace
exec "${ns[@]}" sh -c 'ip link set lo up && cd "$1/web" && shift && exec node --test "$@" test/e2e/' \
  sh "$root" "$@"
