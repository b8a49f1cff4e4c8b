#!/usr/bin/env bash
# Installs the Consul binary the adapter tests run against: Consul 1.8.7 from Debian's bullseye suite
# (package consul 1.8.7+dfsg1-2+b3), checked against a pinned SHA-256, into .tools/consul/consul.
#
# Prints ONLY the absolute path of the binary on stdout (logs go to stderr), so callers can do
#   CONSUL_BIN="$(bash eng/install-consul.sh)"
#
# The system's apt state is never changed: apt runs with a temporary sources list, temporary package
# lists and cache, and an empty sources.list.d. The mirror is taken at run time from the machine's own
# apt sources (deb822 *.sources "URIs:" lines, else sources.list "deb" lines); no host is hard-coded here.
# Idempotent: an existing .tools/consul/consul reporting v1.8.7 is reused without touching the network.
set -euo pipefail

readonly CONSUL_VERSION="1.8.7"
readonly DEB_VERSION="1.8.7+dfsg1-2+b3"
readonly DEB_SHA256="e4e888bba104daba1d9161f49bfc52649a7e4efd45b1a7ead5bc54f2cb9c89d9"
readonly SUITE="bullseye"

log() { printf 'install-consul: %s\n' "$*" >&2; }
fail() { log "ERROR: $*"; exit 1; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest_dir="$root/.tools/consul"
dest="$dest_dir/consul"

installed_version() {
  # `consul version` prints "Consul v1.8.7" on its first line.
  "$1" version 2>/dev/null | awk 'NR == 1 { print $2 }' || true
}

if [ -x "$dest" ] && [ "$(installed_version "$dest")" = "v$CONSUL_VERSION" ]; then
  log "Consul v$CONSUL_VERSION already installed"
  printf '%s\n' "$dest"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || fail "apt-get not found: install Consul $CONSUL_VERSION yourself and set CONSUL_BIN"
command -v dpkg-deb >/dev/null 2>&1 || fail "dpkg-deb not found"
command -v sha256sum >/dev/null 2>&1 || fail "sha256sum not found"

# The Debian mirror this machine already uses (first non-security URI).
mirror=""
shopt -s nullglob
for f in /etc/apt/sources.list.d/*.sources; do
  while read -r uri; do
    case "$uri" in *security*) continue ;; esac
    [ -z "$mirror" ] && mirror="$uri"
  done < <(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' "$f")
done
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  while read -r uri; do
    case "$uri" in *security*) continue ;; esac
    [ -z "$mirror" ] && mirror="$uri"
  done < <(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; break } }' /etc/apt/sources.list)
fi
shopt -u nullglob
[ -n "$mirror" ] || fail "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"
mirror="${mirror%/}"
log "using mirror from the system's apt sources: $mirror"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/sourceparts" "$work/download"
keyring="/usr/share/keyrings/debian-archive-keyring.gpg"
if [ -f "$keyring" ]; then
  printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$mirror" "$SUITE" >"$work/sources.list"
else
  # The package itself is verified against the pinned SHA-256 below either way.
  printf 'deb %s %s main\n' "$mirror" "$SUITE" >"$work/sources.list"
fi

apt_opts=(
  -o "Dir::Etc::SourceList=$work/sources.list"
  -o "Dir::Etc::SourceParts=$work/sourceparts"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  -o "Dir::Cache::pkgcache="
  -o "Dir::Cache::srcpkgcache="
  -o "APT::Sandbox::User=root"
  -o "Debug::NoLocking=1"
  -o "Acquire::Languages=none"
  -o "APT::Architecture=amd64"
  -o "APT::Architectures=amd64"
)
[ "$(dpkg --print-architecture 2>/dev/null || echo amd64)" = "amd64" ] || fail "only amd64 is pinned (SHA-256 of the amd64 .deb)"

log "fetching the $SUITE package index"
apt-get "${apt_opts[@]}" -qq update >&2 || fail "apt-get update against $mirror $SUITE failed"
log "downloading consul=$DEB_VERSION"
(cd "$work/download" && apt-get "${apt_opts[@]}" -qq download "consul=$DEB_VERSION" >&2) \
  || fail "apt-get download consul=$DEB_VERSION failed"

deb="$(find "$work/download" -maxdepth 1 -name 'consul_*.deb' -print -quit)"
[ -n "$deb" ] || fail "no consul .deb downloaded"
actual="$(sha256sum "$deb" | awk '{print $1}')"
[ "$actual" = "$DEB_SHA256" ] || fail "SHA-256 mismatch for $(basename "$deb"): expected $DEB_SHA256, got $actual"
log "SHA-256 verified"

dpkg-deb -x "$deb" "$work/extract"
[ -f "$work/extract/usr/bin/consul" ] || fail "usr/bin/consul not found in the package"
mkdir -p "$dest_dir"
install -m 0755 "$work/extract/usr/bin/consul" "$dest.tmp"
mv -f "$dest.tmp" "$dest"

got="$(installed_version "$dest")"
[ "$got" = "v$CONSUL_VERSION" ] || fail "installed binary reports '$got', expected v$CONSUL_VERSION"
log "installed Consul $got"
printf '%s\n' "$dest"
