#!/bin/sh
# give-back.sh [DIR...]: run as root under sudo, give each DIR (made in a
# tree that belongs to the user who ran sudo) and that user's cargo home
# back to them. A build under `sudo -E` writes root's files into both, and
# the user's own make and cargo would then fail on them. Outside sudo, or
# for what is not that user's to begin with, nothing changes.
set -eu
[ -n "${SUDO_UID:-}" ] && [ "$(id -u)" = 0 ] || exit 0
theirs() { [ -d "$1" ] && [ "$(stat -c %u "$1")" = "$SUDO_UID" ]; }
for d in "$@"; do
  theirs "$(dirname "$(readlink -f "$d")")" && [ -d "$d" ] && chown -R "$SUDO_UID:$SUDO_GID" "$d"
done
cargo_home=${CARGO_HOME:-$HOME/.cargo}
if theirs "$cargo_home"; then chown -R "$SUDO_UID:$SUDO_GID" "$cargo_home"; fi
