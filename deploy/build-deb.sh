#!/usr/bin/env bash
# deploy/build-deb.sh (`make deb`): builds the Debian package with
# `dpkg-buildpackage -us -uc -b` in a clean copy of the working tree, so
# nothing is written outside the output folder (default build/deb/):
# dpkg-buildpackage puts the .deb, .buildinfo and .changes next to the tree it
# builds, here build/deb/zookeeper-VERSION/, and they land in build/deb/.
#
# usage: deploy/build-deb.sh [--out DIR] [--version V] [--no-lintian]
#   --out DIR     output folder (default build/deb; must be under build/)
#   --version V   build version V instead: a new debian/changelog entry
#                 (dch) and VERSION in the copy only (make systemd-check
#                 builds the "next release" for its upgrade test this way)
#   --no-lintian  skip lintian (otherwise errors and warnings fail the build)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=$REPO/build/deb
VERSION=
LINT=1
while (($#)); do
    case $1 in
        --out) OUT=$(realpath -m "$2"); shift 2 ;;
        --version) VERSION=$2; shift 2 ;;
        --no-lintian) LINT=; shift ;;
        *) echo "usage: $0 [--out DIR] [--version V] [--no-lintian]" >&2; exit 2 ;;
    esac
done
case $OUT/ in "$REPO"/build/*) ;; *) echo "build-deb: --out must be under $REPO/build" >&2; exit 2 ;; esac

die() { echo "build-deb: $*" >&2; exit 1; }
for tool in dpkg-buildpackage dh lintian; do
    command -v "$tool" >/dev/null || die "$tool missing: run deploy/install-deps.sh --deb (as root)"
done

# The package's version is VERSION's: a changelog that says otherwise is a
# release half done.
upstream=$(cat "$REPO/VERSION")
changelog=$(dpkg-parsechangelog -l "$REPO/debian/changelog" -S Version)
[ "$upstream" = "$changelog" ] ||
    die "VERSION says $upstream but debian/changelog says $changelog: add a changelog entry (dch --newversion $upstream)"
[ -n "$VERSION" ] || VERSION=$upstream

TREE=$OUT/zookeeper-$VERSION
rm -rf "$TREE" "$OUT"/zookeeper_"$VERSION"_* "$OUT"/zookeeper-dbgsym_"$VERSION"_*
mkdir -p "$TREE"
# The working tree as it is (uncommitted edits included), without build
# outputs, git metadata or caches.
tar -C "$REPO" --exclude=./build --exclude=./.git --exclude=__pycache__ \
    --exclude=./node_modules -cf - . | tar -C "$TREE" -xf -

if [ "$VERSION" != "$upstream" ]; then
    command -v dch >/dev/null || die "dch missing: run deploy/install-deps.sh --deb (as root)"
    echo "$VERSION" > "$TREE/VERSION"
    (cd "$TREE" && DEBFULLNAME="zookeeper maintainers" DEBEMAIL=maintainers@users.noreply.h-seed-de982ced.example \
        dch --newversion "$VERSION" --distribution bookworm --force-distribution \
            "Rebuild as $VERSION." 2>/dev/null)
fi

echo "build-deb: dpkg-buildpackage -us -uc -b in $TREE"
(cd "$TREE" && DEB_BUILD_OPTIONS="parallel=${DEB_JOBS:-2} ${DEB_BUILD_OPTIONS:-}" \
    dpkg-buildpackage -us -uc -b) > "$OUT/build-$VERSION.log" 2>&1 ||
    { tail -40 "$OUT/build-$VERSION.log"; die "dpkg-buildpackage failed (log: $OUT/build-$VERSION.log)"; }

changes=$(ls "$OUT"/zookeeper_"$VERSION"_*.changes)
ls -l "$OUT"/zookeeper_"$VERSION"_*.deb
if [ -n "$LINT" ]; then
    echo "build-deb: lintian $(basename "$changes")"
    lintian --fail-on error,warning --info "$changes"
    echo "build-deb: lintian: no errors, no warnings"
fi
