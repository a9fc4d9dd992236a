#!/usr/bin/env bash
# Fuzzes the code that reads what clients and Redis send: the libFuzzer
# harnesses in fuzz/ (one fuzz_<target>.c each; fuzz/fuzz.h says how to add
# one). Builds them with clang, ASan and UBSan into build-fuzz/, then runs
# every target (or the ones named) for a bounded time, several at once, from
# its seeds in fuzz/corpus/<target>/.
#   tools/fuzz.sh                         what CI runs: each target for 30 s
#   tools/fuzz.sh --time 600 [target...]  a longer run (targets: --list)
#   tools/fuzz.sh --list                  the targets
# Settings: FUZZ_SECONDS (30) is each target's time when --time is not
# given; FUZZ_JOBS (the number of CPUs) how many run at once; FUZZ_DIR
# (build-fuzz/) where the build, logs and findings go.
# Inputs that reach new code are kept in FUZZ_DIR/corpus/<target>/ for the
# next run, never written into fuzz/corpus/. Any finding (a crash, a
# sanitizer report, a broken invariant, a leak, a timeout) prints the report
# and the path of the input that caused it, and the script exits with 1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-$(nproc)}
dir=${FUZZ_DIR:-$root/build-fuzz}

all_targets() {
  local f
  for f in "$root"/fuzz/fuzz_*.c; do
    f=${f##*/fuzz_}
    echo "${f%.c}"
  done
}

targets=()
while [ $# -gt 0 ]; do
  case $1 in
  --time)
    [[ ${2:-} =~ ^[0-9]+$ ]] || { echo "usage: $0 [--time SECONDS] [target...]" >&2; exit 2; }
    seconds=$2
    shift 2
    ;;
  --list)
    all_targets
    exit 0
    ;;
  -*)
    echo "usage: $0 [--time SECONDS] [target...] | --list" >&2
    exit 2
    ;;
  *)
    [ -f "$root/fuzz/fuzz_$1.c" ] || { echo "fuzz: no target $1 (see $0 --list)" >&2; exit 2; }
    targets+=("$1")
    shift
    ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(all_targets)

# clang and libFuzzer's runtime come with the test packages.
"$root/tools/setup.sh" >/dev/null
cmake -S "$root" -B "$dir" -DSIGNAL_FUZZ=ON -DCMAKE_C_COMPILER=clang \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" -j"$(nproc)" >/dev/null

# Leaks count as findings; stack traces through addr2line when
# llvm-symbolizer is not installed.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allow_addr2line=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Runs one target; its output goes to logs/<target>.log, its exit code to
# logs/<target>.rc.
run_target() {
  local t=$1 dict=()
  [ -f "$root/fuzz/$t.dict" ] && dict=(-dict="$root/fuzz/$t.dict")
  mkdir -p "$dir/corpus/$t" "$dir/artifacts/$t"
  rm -f "$dir/artifacts/$t"/*
  local rc=0
  "$dir/bin/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/$t/" "${dict[@]}" \
    "$dir/corpus/$t" "$root/fuzz/corpus/$t" >"$dir/logs/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$dir/logs/$t.rc"
}

mkdir -p "$dir/logs"
echo "fuzz: ${targets[*]}: ${seconds} s each, $jobs at a time"
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
    wait -n || true
  done
  run_target "$t" &
done
wait

failed=0
for t in "${targets[@]}"; do
  log=$dir/logs/$t.log
  if [ "$(cat "$dir/logs/$t.rc")" = 0 ]; then
    # "#1234 DONE cov: 177 ft: 703 corp: 353/58Kb lim: 4096 exec/s: 18096 rss: 510Mb"
    sed -n 's/^#\([0-9]*\)[[:space:]]*DONE *cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\)\/[^ ]* .*exec\/s: \([0-9]*\).*/\1 \2 \3 \4 \5/p' "$log" |
      while read -r runs cov ft corp rate; do
        echo "fuzz: $t: ok, $runs runs ($rate/s), coverage $cov edges $ft features, corpus $corp"
      done
    continue
  fi
  failed=1
  echo "fuzz: $t: FINDING (log: $log)"
  # The report: from the first line that starts one, to the end.
  sed -n '/==ERROR\|runtime error\|check failed\|ERROR: libFuzzer\|ALARM: working on the last/,$p' "$log" | head -120
  for input in "$dir/artifacts/$t"/*; do
    [ -f "$input" ] || continue
    echo "fuzz: $t: the input is $input"
    echo "fuzz: $t: reproduce with: $dir/bin/fuzz_$t $input"
  done
done
[ "$failed" = 0 ] || { echo "fuzz: FAILED"; exit 1; }
echo "fuzz: no finding"
