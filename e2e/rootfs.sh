#!/usr/bin/env bash
# e2e/rootfs.sh: prints the path of a cached tarball of a minimal Debian root filesystem that
# boots with systemd, creating it with debootstrap when it is missing.
#
#   bash e2e/rootfs.sh            (as root; needs debootstrap and zstd)
#
# The suite is this machine's (VERSION_CODENAME in /etc/os-release) and the mirror is the one
# this machine's apt sources use for it, so the container runs the same systemd as the host
# would. PORTBINDER_E2E_MIRROR overrides the mirror, PORTBINDER_E2E_CACHE the cache directory
# (default /var/cache/portbinder-e2e). The tarball's name carries a hash of the suite, the
# mirror, the package list and RECIPE, so changing any of them builds a new one (and removes
# the old one); bump RECIPE when the steps after debootstrap change.
set -euo pipefail

# What the tests need inside the container: systemd as PID 1, python3 for the app and the
# clients, passwd for useradd, iproute2 for ss.
PACKAGES=systemd-sysv,python3,passwd,iproute2
RECIPE=1

die() { printf 'e2e/rootfs.sh: error: %s\n' "$*" >&2; exit 1; }

suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$suite" ] || die "no VERSION_CODENAME in /etc/os-release: cannot tell which Debian suite to bootstrap"

# The first mirror that apt's sources list for $suite, deb822 (*.sources) or one-line (*.list).
mirror_from_apt() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822 stanzas are separated by blank lines; print URIs of stanzas whose Suites has $suite.
        awk -v suite="$suite" '
            function flush() { if (uris != "" && (" " suites " ") ~ (" " suite " ") && types ~ /(^| )deb( |$)/) { split(uris, u, " "); print u[1]; found = 1; exit } uris = suites = types = "" }
            /^[[:space:]]*$/ { flush(); next }
            /^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); uris = $0 }
            /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0 }
            /^Types:/ { sub(/^Types:[[:space:]]*/, ""); types = $0 }
            END { if (!found) flush() }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v suite="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == suite) { print $i; exit } }' "$f"
    done
}

mirror=${PORTBINDER_E2E_MIRROR:-$(mirror_from_apt | head -n 1)}
[ -n "$mirror" ] || die "no apt source for suite $suite found in /etc/apt: set PORTBINDER_E2E_MIRROR to a Debian mirror URL"

cache=${PORTBINDER_E2E_CACHE:-/var/cache/portbinder-e2e}
key=$(printf '%s\n' "$suite" "$mirror" "$PACKAGES" "$RECIPE" | sha256sum | cut -c1-12)
tarball="$cache/rootfs-$suite-$key.tar.zst"
if [ -s "$tarball" ]; then
    echo "$tarball"
    exit 0
fi

command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
mkdir -p "$cache"
build=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$build"' EXIT
printf 'e2e/rootfs.sh: debootstrap %s from %s (about a minute, cached in %s)\n' "$suite" "$mirror" "$cache" >&2
debootstrap --variant=minbase --include="$PACKAGES" "$suite" "$build/root" "$mirror" >"$build/debootstrap.log" 2>&1 ||
    { tail -n 30 "$build/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
# The console is read-only in the test container; a getty on it only fails.
ln -sf /dev/null "$build/root/etc/systemd/system/console-getty.service"
rm -rf "$build/root/var/cache/apt/archives/"*.deb "$build/root/var/lib/apt/lists/"*
tar --zstd -cf "$build/rootfs.tar.zst" -C "$build/root" .
rm -f "$cache"/rootfs-*.tar.zst
mv "$build/rootfs.tar.zst" "$tarball"
echo "$tarball"
