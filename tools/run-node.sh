#!/usr/bin/env bash
# Builds what is missing, then runs a node: tools/run-node.sh --dev
# Every argument goes to signal-node (see --help).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/build.sh" "$root/build"
exec "$root/build/bin/signal-node" "$@"
