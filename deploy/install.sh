#!/bin/sh
# Installs (or removes) stackctl: the binary, its sink plugins, the board's configuration and
# the systemd unit. Run from a checkout after `cargo build --release -p stackctl -p sink-webrtc
# -p sink-recorder`; `deploy/install.sh --help` says more, deploy/README.md says why.
set -eu

usage() {
    cat <<'EOF'
usage: deploy/install.sh [options]

Installs stackctl from a release build:
  PREFIX/bin/stackctl                          the binary
  PREFIX/lib/stackctl/plugins/libsink_*.so     the streaming and recording sinks
  /etc/stackctl/stackctl.toml                  the configuration (an edited one is kept)
  PREFIX/lib/systemd/system/stackctl.service   the unit
  PREFIX/share/stackctl/stackctl.toml          the shipped configuration, to compare with
then (unless DESTDIR or --no-systemd) runs systemctl daemon-reload and enable.

options:
  --prefix DIR      installation prefix [default: /usr]
  --destdir DIR     stage everything under DIR (packaging); also $DESTDIR. Never runs systemctl
  --build-dir DIR   where the built binary and plugins are
                    [default: $CARGO_TARGET_DIR/release, else target/release of the checkout]
  --uninstall       remove what an install put there; an edited configuration stays
  --no-systemd      do not run systemctl
  -h, --help        this text
EOF
}

die() {
    echo "install.sh: $*" >&2
    exit 1
}

warn() {
    echo "install.sh: warning: $*" >&2
}

say() {
    echo "install.sh: $*"
}

# The checkout this script belongs to: the configuration and the unit are taken from it.
SRC=$(cd "$(dirname "$0")/.." && pwd)

PREFIX=/usr
DESTDIR=${DESTDIR:-}
BUILD_DIR=
UNINSTALL=no
SYSTEMD=yes

# An option's value: the next argument, which must be there.
need_value() {
    [ "$#" -ge 2 ] || { echo "install.sh: $1 needs a value" >&2; usage >&2; exit 2; }
}

while [ "$#" -gt 0 ]; do
    case $1 in
        --prefix) need_value "$@"; PREFIX=$2; shift 2 ;;
        --prefix=*) PREFIX=${1#*=}; shift ;;
        --destdir) need_value "$@"; DESTDIR=$2; shift 2 ;;
        --destdir=*) DESTDIR=${1#*=}; shift ;;
        --build-dir) need_value "$@"; BUILD_DIR=$2; shift 2 ;;
        --build-dir=*) BUILD_DIR=${1#*=}; shift ;;
        --uninstall) UNINSTALL=yes; shift ;;
        --no-systemd) SYSTEMD=no; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done

case $PREFIX in
    /*) ;;
    *) die "--prefix must be an absolute path: $PREFIX" ;;
esac
PREFIX=${PREFIX%/}
[ -n "$PREFIX" ] || die "--prefix / is not supported; use /usr"
if [ -z "$BUILD_DIR" ]; then
    BUILD_DIR=${CARGO_TARGET_DIR:-$SRC/target}/release
fi
# A staged install never touches the running system's service manager.
if [ -n "$DESTDIR" ]; then
    DESTDIR=${DESTDIR%/}
    SYSTEMD=no
fi

BIN=$PREFIX/bin/stackctl
PLUGIN_DIR=$PREFIX/lib/stackctl/plugins
# The sinks this checkout builds. Other plugins in PLUGIN_DIR are the operator's: left alone.
PLUGINS="libsink_webrtc.so libsink_recorder.so libsink_rtsp.so"
# Not under PREFIX: stackctl looks for /etc/stackctl/stackctl.toml, and the unit names it.
CONF_DIR=/etc/stackctl
CONF=$CONF_DIR/stackctl.toml
# The configuration as shipped, to tell an edited /etc copy from an old default.
SHIPPED=$PREFIX/share/stackctl/stackctl.toml
UNIT=$PREFIX/lib/systemd/system/stackctl.service

# systemctl only for a real install, on a system that runs systemd.
use_systemctl() {
    [ "$SYSTEMD" = yes ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

# Copies $1 to $DESTDIR$2 with mode $3, through a temporary file and a rename: a running
# stackctl keeps the binary and the plugins it mapped (overwriting them in place could crash
# it), and nobody sees a half-written file.
put() {
    dest=$DESTDIR$2
    mkdir -p "$(dirname "$dest")"
    tmp=$dest.install-tmp.$$
    cp "$1" "$tmp"
    chmod "$3" "$tmp"
    mv -f "$tmp" "$dest"
}

# Removes $DESTDIR$1 if it is there, saying so.
remove() {
    if [ -e "$DESTDIR$1" ] || [ -L "$DESTDIR$1" ]; then
        rm -f "$DESTDIR$1"
        say "removed $1"
    fi
}

# Removes the directory $DESTDIR$1 if it is empty.
prune() {
    rmdir "$DESTDIR$1" 2>/dev/null || true
}

install_all() {
    [ -f "$BUILD_DIR/stackctl" ] ||
        die "$BUILD_DIR/stackctl not found: build it (cargo build --release -p stackctl -p sink-webrtc -p sink-recorder) or name the build with --build-dir"
    [ -f "$SRC/config/stackctl.toml" ] || die "$SRC/config/stackctl.toml not found"
    [ -f "$SRC/deploy/stackctl.service" ] || die "$SRC/deploy/stackctl.service not found"

    put "$BUILD_DIR/stackctl" "$BIN" 0755
    say "installed $BIN"

    for plugin in $PLUGINS; do
        if [ -f "$BUILD_DIR/$plugin" ]; then
            put "$BUILD_DIR/$plugin" "$PLUGIN_DIR/$plugin" 0644
            say "installed $PLUGIN_DIR/$plugin"
        else
            # libsink_webrtc.so is built by the package sink-webrtc.
            package=$(echo "${plugin#lib}" | sed 's/\.so$//; s/_/-/g')
            warn "$BUILD_DIR/$plugin not found: not installed (cargo build --release -p $package builds it; stackctl runs without it, and says so)"
        fi
    done
    # stackctl looks for plugins next to itself, in /usr/lib/stackctl/plugins and in
    # plugin_dirs; nowhere else.
    if [ "$PLUGIN_DIR" != /usr/lib/stackctl/plugins ]; then
        warn "stackctl does not search $PLUGIN_DIR: add plugin_dirs = [\"$PLUGIN_DIR\"] to $CONF"
    fi

    install_config

    # The unit names /usr/bin/stackctl; another prefix gets its own path.
    unit_src=$SRC/deploy/stackctl.service
    if [ "$BIN" != /usr/bin/stackctl ]; then
        unit_tmp=$(mktemp)
        sed "s|^ExecStart=/usr/bin/stackctl |ExecStart=$BIN |" "$unit_src" >"$unit_tmp"
        put "$unit_tmp" "$UNIT" 0644
        rm -f "$unit_tmp"
    else
        put "$unit_src" "$UNIT" 0644
    fi
    say "installed $UNIT"

    if use_systemctl; then
        systemctl daemon-reload
        systemctl enable stackctl.service
        if systemctl is-active --quiet stackctl.service; then
            say "stackctl is running the previous version: systemctl restart stackctl"
        else
            say "start it: systemctl start stackctl; then: stackctl status, journalctl -u stackctl -f"
        fi
    elif [ -n "$DESTDIR" ]; then
        say "staged under $DESTDIR (systemctl not run)"
    else
        say "systemctl not run: systemctl daemon-reload && systemctl enable --now stackctl"
    fi
}

# The configuration is the operator's once edited: never overwritten (dpkg's conffile rule).
install_config() {
    new=$SRC/config/stackctl.toml
    conf=$DESTDIR$CONF
    if [ ! -e "$conf" ]; then
        put "$new" "$CONF" 0644
        say "installed $CONF"
    elif cmp -s "$conf" "$new"; then
        say "$CONF is up to date"
        rm -f "$conf.new"
    elif [ -f "$DESTDIR$SHIPPED" ] && cmp -s "$conf" "$DESTDIR$SHIPPED"; then
        # Never edited: the previous version's default, replaced by this one's.
        put "$new" "$CONF" 0644
        say "updated $CONF (it was the previous default)"
        rm -f "$conf.new"
    else
        put "$new" "$CONF.new" 0644
        say "kept your edited $CONF; this version's default is $CONF.new (compare: diff $CONF $CONF.new)"
    fi
    put "$new" "$SHIPPED" 0644
}

uninstall_all() {
    if use_systemctl && systemctl cat stackctl.service >/dev/null 2>&1; then
        systemctl disable --now stackctl.service || warn "could not stop and disable stackctl.service"
    fi
    remove "$BIN"
    for plugin in $PLUGINS; do
        remove "$PLUGIN_DIR/$plugin"
    done
    prune "$PLUGIN_DIR"
    prune "$PREFIX/lib/stackctl"
    remove "$UNIT"

    conf=$DESTDIR$CONF
    if [ -e "$conf" ]; then
        if [ -f "$DESTDIR$SHIPPED" ] && cmp -s "$conf" "$DESTDIR$SHIPPED"; then
            remove "$CONF"
        else
            say "kept $CONF: it was edited (remove it yourself if it is no longer wanted)"
        fi
    fi
    remove "$CONF.new"
    prune "$CONF_DIR"
    remove "$SHIPPED"
    prune "$PREFIX/share/stackctl"

    if use_systemctl; then
        systemctl daemon-reload
    fi
}

if [ "$UNINSTALL" = yes ]; then
    uninstall_all
else
    install_all
fi
