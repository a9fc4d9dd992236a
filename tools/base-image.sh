#!/usr/bin/env bash
# Makes the base image docker/Dockerfile starts from, docker.io/library/debian:bookworm-slim,
# locally from Debian's packages, for machines that cannot pull images (no registry
# reachable). Skipped when podman already has an image of that name, pulled or made here.
#
#   tools/base-image.sh            make it unless it exists
#   tools/base-image.sh --force    make it again
#
# It is made the way Debian's official slim image is (debuerreotype): debootstrap
# --variant=minbase, the same dpkg excludes (no docs, man pages or translations),
# the same apt settings, and no package lists or .deb files left behind. About 25 s
# and 80 MB. Needs root (debootstrap), podman and debootstrap (tools/setup.sh
# installs both). Set CONTAINERS_CONF first on sandboxed machines (README.md, Containers).
# Settings (environment): BASE_IMAGE (the name to give it), DEBIAN_MIRROR.
set -euo pipefail

IMAGE=${BASE_IMAGE:-docker.io/library/debian:bookworm-slim}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm

log() { printf 'base-image: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

force=0
case ${1:-} in
--force) force=1 ;;
"") ;;
*) die "usage: $0 [--force]" ;;
esac

command -v podman >/dev/null || die "podman is not installed (tools/setup.sh installs it)"
if [ $force -eq 0 ] && podman image exists "$IMAGE"; then
  exit 0
fi
[ "$(id -u)" -eq 0 ] || die "debootstrap needs root: run as root (or with sudo)"
command -v debootstrap >/dev/null || die "debootstrap is not installed (tools/setup.sh installs it)"

work=$(mktemp -d "${TMPDIR:-/tmp}/signal-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
log "making $IMAGE with debootstrap (about 25 s)"
if ! debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1; then
  tail -n 20 "$work/debootstrap.log" >&2
  die "debootstrap failed"
fi

# What Debian's slim image does (debuerreotype-slimify and debuerreotype-minimizing-config).
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# as in Debian's official slim image: no documentation, man pages or translations
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
printf 'APT::AutoRemove::SuggestsImportant "false";\n' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
(
  cd "$root"
  find usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
  find usr/share/doc -mindepth 1 -type d -empty -delete
  rm -rf usr/share/groff/* usr/share/info/* usr/share/linda/* usr/share/lintian/overrides/* \
    usr/share/locale/* usr/share/man/*
  rm -rf var/lib/apt/lists/* var/cache/apt/archives/*.deb var/cache/apt/*.bin var/log/*.log \
    var/log/apt/* var/cache/ldconfig/aux-cache tmp/* root/.bash_history
  : >etc/hostname
  : >etc/resolv.conf
)
if ! tar --numeric-owner --xattrs -C "$root" -c . |
  podman import --change 'CMD ["bash"]' --message "debootstrap --variant=minbase $SUITE, slimmed" - "$IMAGE" \
    >"$work/import.log" 2>&1; then
  cat "$work/import.log" >&2
  die "podman import failed"
fi
log "made $IMAGE ($(podman image inspect -f '{{.Size}}' "$IMAGE") bytes)"
