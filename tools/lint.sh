#!/usr/bin/env bash
# The static checks CI runs: formatting (.clang-format) and clang-tidy
# (.clang-tidy: the analyzer's bug finders and the bugprone family), on the
# compile commands of a build. Installs clang-format and clang-tidy when
# missing. Usage: tools/lint.sh [BUILD_DIR] (default build/, made if needed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build}
missing=()
for tool in clang-format clang-tidy; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cd "$root"
clang-format --dry-run --Werror node/*.[ch] common/*.[ch] tests/unit/*.c tools/*.c fuzz/*.[ch]
[ -f "$dir/compile_commands.json" ] || "$root/tools/build.sh" "$dir"
clang-tidy -p "$dir" --quiet node/*.c common/*.c tools/*.c fuzz/*.c 2>/dev/null
echo "lint: clang-format and clang-tidy clean"
