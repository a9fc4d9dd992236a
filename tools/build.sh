#!/usr/bin/env bash
# Installs what is missing (tools/setup.sh), then configures and builds.
# Usage: tools/build.sh [BUILD_DIR [extra cmake args...]]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build}
shift || true
lws_prefix=$("$root/tools/setup.sh")
cmake -S "$root" -B "$dir" -DSIGNAL_LWS_PREFIX="$lws_prefix" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)" >/dev/null
