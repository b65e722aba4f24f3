#!/bin/sh
# Plain `make` never installs system packages, even as root: with a build
# package missing (a dpkg-query that hides libcjson-dev), `make` in a fresh
# copy of the tree fails, names the package and the one command that
# installs it, and never runs apt-get. `make check` does the whole set-up:
# as root it runs apt-get for the missing package (a recording stand-in
# that fails the install, so nothing is installed).
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$tmp/src
mkdir "$src"
for f in *; do
    case "$f" in build*|config.mk|config.status|config.log|autom4te.cache) continue ;; esac
    cp -R "$f" "$src/"
done
real=$(command -v dpkg-query) || { echo "ok   no dpkg-query (not Debian): skipped"; exit 0; }
mkdir "$tmp/bin"
cat >"$tmp/bin/dpkg-query" <<EOF
#!/bin/sh
# dpkg-query -W -f=FORMAT PACKAGE...: as if libcjson-dev were not installed
w=\$1 f=\$2; shift 2
set -- \$(for p in "\$@"; do [ "\$p" = libcjson-dev ] || echo "\$p"; done)
[ \$# -gt 0 ] || exit 1
exec "$real" "\$w" "\$f" "\$@"
EOF
cat >"$tmp/bin/apt-get" <<EOF
#!/bin/sh
echo "apt-get \$*" >>"$tmp/apt-get.calls"
[ "\$1" = update ]
EOF
chmod +x "$tmp/bin/dpkg-query" "$tmp/bin/apt-get"
clean_make() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u B PATH="$tmp/bin:$PATH" make "$@"; }

cd "$src" || exit 1
if clean_make >"$tmp/make.log" 2>&1; then
    echo "FAIL make succeeded with libcjson-dev missing"; exit 1
fi
if [ -e "$tmp/apt-get.calls" ]; then
    echo "FAIL plain make ran: $(cat "$tmp/apt-get.calls")"; exit 1
fi
if grep -q 'missing Debian packages: libcjson-dev$' "$tmp/make.log" &&
    grep -q 'with: apt-get update && apt-get install -y --no-install-recommends libcjson-dev$' "$tmp/make.log"; then
    echo "ok   plain make names the missing package and the command, and installs nothing"
else
    echo "FAIL plain make's output:"; cat "$tmp/make.log"; exit 1
fi
[ -f config.mk ] && { echo "FAIL plain make configured without its packages"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
    echo "ok   not root: make check's installing set-up not exercised"
    exit 0
fi
clean_make check >"$tmp/check.log" 2>&1 && { echo "FAIL make check succeeded with apt-get failing"; exit 1; }
if grep -q 'install -y -qq --no-install-recommends libcjson-dev$' "$tmp/apt-get.calls" 2>/dev/null; then
    echo "ok   make check (as root) installs the missing package itself"
else
    echo "FAIL make check did not run apt-get for libcjson-dev:"; cat "$tmp/check.log"; exit 1
fi
