#!/usr/bin/env bash
# Installs what is missing (tools/setup.sh), then configures and builds.
# Usage: tools/build.sh [BUILD_DIR [extra cmake args...]]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build}
shift || true
# setup.sh prints the cmake arguments for the libraries it built, one a line.
deps=$("$root/tools/setup.sh")
mapfile -t deps_args <<<"$deps"
cmake -S "$root" -B "$dir" "${deps_args[@]}" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)" >/dev/null
