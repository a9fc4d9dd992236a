#!/usr/bin/env bash
# Installs what signal-node needs to build and test on Debian 12, builds the
# libwebsockets and hiredis it links against, and installs the browser client's npm
# development packages (web/node_modules). Safe to run again: each step is skipped when
# its result is already there, so the common case costs a second.
#
# Debian's libwebsockets is built without libevent support, so we build the same
# 4.1.6 from Debian's source package, static, into a cache folder outside the
# build tree (SIGNAL_DEPS_DIR, default ~/.cache/signal-node), with the small
# fixes in tools/patches/. Debian 12's hiredis (0.14) has no TLS, so hiredis
# 1.2.0 comes from Debian 13's source package (a deb-src entry only: no trixie
# binary package is ever installed), static, with its TLS library, into the
# same folder.
#
#   tools/setup.sh               everything the build and every test need (the default)
#   tools/setup.sh --build-only  only what the build and the unit tests need (docker/Dockerfile
#                                uses it): no redis-server, HAProxy, Python, podman,
#                                chromium, Node.js or npm packages
# Prints the cmake arguments that point the build at both, one a line:
# -DSIGNAL_LWS_PREFIX=... and -DSIGNAL_HIREDIS_PREFIX=...
set -euo pipefail

MODE=all
case ${1:-} in
--build-only) MODE=build ;;
"") ;;
*)
  echo "usage: $0 [--build-only]" >&2
  exit 2
  ;;
esac

LWS_VERSION=4.1.6
DEPS_DIR=${SIGNAL_DEPS_DIR:-$HOME/.cache/signal-node}
LWS_PREFIX=$DEPS_DIR/lws-$LWS_VERSION
# Changing these flags must change the stamp so that the cache is rebuilt.
LWS_FLAGS=(-DLWS_WITH_LIBEVENT=ON -DLWS_WITH_EVLIB_PLUGINS=OFF -DDISABLE_WERROR=ON
  -DLWS_WITHOUT_TESTAPPS=ON -DLWS_WITH_STATIC=ON -DLWS_WITH_SHARED=OFF
  -DLWS_WITH_MINIMAL_EXAMPLES=OFF -DLWS_WITHOUT_EXTENSIONS=ON -DLWS_IPV6=ON
  -DLWS_WITH_SSL=OFF -DLWS_WITH_HTTP2=OFF
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_POSITION_INDEPENDENT_CODE=ON)
PATCHES=("$(cd "$(dirname "$0")" && pwd)"/patches/lws-*.patch)
STAMP="$LWS_VERSION ${LWS_FLAGS[*]} $(cat "${PATCHES[@]}" | sha256sum | cut -c1-16)"
HIREDIS_VERSION=1.2.0
HIREDIS_PREFIX=$DEPS_DIR/hiredis-$HIREDIS_VERSION
# hiredis's Makefile variables; changing them rebuilds hiredis.
HIREDIS_FLAGS=(USE_SSL=1 OPTIMIZATION=-O2)
HIREDIS_STAMP="$HIREDIS_VERSION ${HIREDIS_FLAGS[*]}"

# The build and the unit tests (ctest).
PACKAGES=(build-essential cmake pkg-config dpkg-dev libssl-dev zlib1g-dev libcap-dev
  libevent-dev libjansson-dev libjwt-dev libcriterion-dev uthash-dev libjemalloc-dev)
# The integration tests: Redis and its Sentinel (redis-sentinel also installs
# and enables a service on port 26379 watching "mymaster" at 127.0.0.1:6379;
# the tests start their own sentinels on free ports and never use it), HAProxy,
# pytest, and the container image test
# (tests/integration/test_container.py: podman, runc, debootstrap, podman-compose);
# tools/fuzz.sh: clang and its libFuzzer and sanitizer runtimes;
# the browser tests (tools/web-test.sh): chromium, and ip for the loopback of
# their network namespace.
TEST_PACKAGES=(redis-server redis-sentinel python3 python3-pytest openssl haproxy
  podman runc debootstrap podman-compose clang libclang-rt-14-dev chromium iproute2)
[ "$MODE" = build ] || PACKAGES+=("${TEST_PACKAGES[@]}")
# The browser client's tests need Node.js and npm: Debian's, unless a node and
# an npm are already on PATH (for example NodeSource's nodejs, which bundles
# npm and conflicts with Debian's npm package).
if [ "$MODE" != build ]; then
  command -v node >/dev/null || PACKAGES+=(nodejs)
  command -v npm >/dev/null || PACKAGES+=(npm)
fi
WEB_DIR=$(cd "$(dirname "$0")/.." && pwd)/web

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

log() { printf 'setup: %s\n' "$*" >&2; }

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

install_packages() {
  local missing
  missing=$(missing_packages)
  [ -z "$missing" ] && return 0
  log "installing Debian packages: $(echo $missing)"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

TRIXIE_SRC=/etc/apt/sources.list.d/signal-node-trixie-src.sources

# Writes file, an apt entry for suite's source packages only (so that apt
# never installs a binary package of that suite), and updates apt's lists.
add_src_entry() {
  local file=$1 suite=$2
  log "adding a deb-src entry for $suite ($file)"
  $SUDO tee "$file" >/dev/null <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  $SUDO apt-get update -qq
}

enable_deb_src() {
  if ! grep -rqs --exclude="${TRIXIE_SRC##*/}" '^Types:.*deb-src' /etc/apt/sources.list.d/ &&
    ! grep -qs '^deb-src' /etc/apt/sources.list; then
    add_src_entry /etc/apt/sources.list.d/signal-node-src.sources bookworm
  fi
}

# True when prefix holds a build made with stamp.
built_with() {
  [ -f "$1/.stamp" ] && [ "$(cat "$1/.stamp")" = "$2" ]
}

# Unpacks the source package (package/suite), with Debian's patches applied,
# into the folder work; exits, showing apt's output, when that does not give
# the folder dir.
get_source() {
  local work=$1 package=$2 dir=$3
  if ! (cd "$work" && apt-get source "$package" >"$work/source.log" 2>&1) || [ ! -d "$work/$dir" ]; then
    cat "$work/source.log" >&2
    log "could not get $dir from Debian's source packages ($package)"
    exit 1
  fi
}

build_lws() {
  built_with "$LWS_PREFIX" "$STAMP" && return 0
  enable_deb_src
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  log "building libwebsockets $LWS_VERSION from Debian's source package (about 15 s)"
  # Any Debian revision of 4.1.6 will do (bookworm's: trixie's is newer).
  get_source "$work" libwebsockets/bookworm "libwebsockets-$LWS_VERSION"
  local src="$work/libwebsockets-$LWS_VERSION" p
  for p in "${PATCHES[@]}"; do
    patch -s -d "$src" -p1 <"$p"
  done
  cmake -S "$src" -B "$work/build" -DCMAKE_INSTALL_PREFIX="$LWS_PREFIX" "${LWS_FLAGS[@]}" >"$work/cmake.log" 2>&1 ||
    { cat "$work/cmake.log" >&2; exit 1; }
  cmake --build "$work/build" -j"$(nproc)" >"$work/build.log" 2>&1 || { tail -50 "$work/build.log" >&2; exit 1; }
  rm -rf "$LWS_PREFIX"
  cmake --install "$work/build" >/dev/null
  echo "$STAMP" >"$LWS_PREFIX/.stamp"
}

# Debian 13's source packages, for hiredis: a file of its own, with source
# packages only, so that apt never installs a trixie binary package.
enable_trixie_src() {
  [ -f "$TRIXIE_SRC" ] || add_src_entry "$TRIXIE_SRC" trixie
}

build_hiredis() {
  built_with "$HIREDIS_PREFIX" "$HIREDIS_STAMP" && return 0
  enable_trixie_src
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  log "building hiredis $HIREDIS_VERSION with TLS from Debian 13's source package (a few seconds)"
  # Any Debian revision of 1.2.0 will do.
  get_source "$work" hiredis/trixie "hiredis-$HIREDIS_VERSION"
  rm -rf "$HIREDIS_PREFIX"
  # LIBRARY_PATH is the Makefile's install folder, but also a variable of
  # gcc's that the environment may hold (a list of folders): named here.
  make -C "$work/hiredis-$HIREDIS_VERSION" -j"$(nproc)" "${HIREDIS_FLAGS[@]}" PREFIX="$HIREDIS_PREFIX" \
    LIBRARY_PATH=lib install >"$work/build.log" 2>&1 || { tail -50 "$work/build.log" >&2; exit 1; }
  # The Makefile installs shared libraries and CMake files too: without them
  # nothing can link this hiredis but statically.
  rm -rf "$HIREDIS_PREFIX"/lib/*.so* "$HIREDIS_PREFIX/lib/cmake"
  echo "$HIREDIS_STAMP" >"$HIREDIS_PREFIX/.stamp"
}

# npm ci in web/ when node_modules is missing or older than the lock file
# (npm writes node_modules/.package-lock.json at each install). Its output goes
# to stderr: stdout carries only the cmake arguments.
install_npm_packages() {
  [ -f "$WEB_DIR/package-lock.json" ] || return 0
  [ "$WEB_DIR/package-lock.json" -nt "$WEB_DIR/node_modules/.package-lock.json" ] || return 0
  log "installing the browser client's npm packages (npm ci in web/)"
  (cd "$WEB_DIR" && npm ci --no-audit --no-fund --loglevel=error) >&2
}

install_packages
build_lws
build_hiredis
[ "$MODE" = build ] || install_npm_packages
echo "-DSIGNAL_LWS_PREFIX=$LWS_PREFIX"
echo "-DSIGNAL_HIREDIS_PREFIX=$HIREDIS_PREFIX"
