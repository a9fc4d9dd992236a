#!/usr/bin/env bash
# Builds what is missing, then runs every test: the unit tests (ctest), the
# integration tests (pytest, real node processes and a real redis-server; the
# cluster tests once more with the rooms sharded over two redis-servers), and
# the browser client's: its type check (tsc), its unit tests (node --test
# against a real node) and the browser tests (chromium pages in calls across
# nodes, tools/web-test.sh). Every step runs even when an earlier one failed;
# the exit status fails if any did.
#   tools/test.sh          the normal build, in build/
#   tools/test.sh --asan   the same suite with AddressSanitizer + UBSan, in build-asan/
# Extra arguments go to pytest (e.g. -k welcome).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/build
cmake_args=()
if [ "${1:-}" = "--asan" ]; then
  shift
  dir=$root/build-asan
  cmake_args=(-DSIGNAL_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  # The container image is not a sanitizer build: its test runs in the normal pass only.
  export SIGNAL_TEST_ASAN=1
fi
"$root/tools/build.sh" "$dir" "${cmake_args[@]}"
(cd "$dir" && ctest --output-on-failure)
export SIGNAL_NODE_BIN=$dir/bin/signal-node SIGNAL_TOKEN_BIN=$dir/bin/signal-token
cd "$root"
failed=()
# Debian's python3, which has pytest: not whatever python3 is first on PATH.
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration "$@" || failed+=(pytest)
# Every cluster test again with SIGNAL_REDIS_URL a list of two shards: about
# 80 s on a 2-core box, under ASan too, where it puts the bus of each shard
# through every failure the cluster tests make.
SIGNAL_TEST_REDIS_SHARDS=2 /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration "$@" \
  -m cluster || failed+=("pytest on 2 redis shards")
(cd web && npx --no-install tsc -p tsconfig.json) || failed+=("type check")
if [ -d web/test/unit ]; then
  (cd web && node --test test/unit/) || failed+=("web unit tests")
fi
"$root/tools/web-test.sh" || failed+=("browser tests")
if [ ${#failed[@]} -gt 0 ]; then
  (IFS=,; echo "test: failed: ${failed[*]}" >&2)
  exit 1
fi
