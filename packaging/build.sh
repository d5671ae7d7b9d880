#!/usr/bin/env bash
# Build the packaged sdstudio for Linux: the one-folder PyInstaller build, a .tar.gz of it and a .deb.
#
#   packaging/build.sh              # everything (about 10-15 min on 2 CPU cores, see README)
#   packaging/build.sh --no-freeze  # re-make the .tar.gz and .deb from an existing folder build,
#                                   # with resources/ (demo model, icons) copied in afresh (~3 min)
#
# Outputs (git-ignored): packaging/dist/sdstudio/ (the folder), packaging/dist/sdstudio-<v>-linux-<arch>.tar.gz,
# packaging/dist/sdstudio_<v>_<arch>.deb, packaging/dist/build-report.txt (sizes and times).
# Environment: PYTHON (default .venv/bin/python), DEB_COMPRESS (gzip|xz|zstd, default gzip: xz
# saves about a quarter of the size but takes over 15 min on 2 busy cores),
# SDSTUDIO_ALLOW_NO_DEMO=1 builds without resources/models/demo (for testing the packaging only).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
DIST="$ROOT/packaging/dist"
WORK="$ROOT/packaging/build"
APP="$DIST/sdstudio"
DEB_COMPRESS="${DEB_COMPRESS:-gzip}"
FREEZE=1
[[ "${1:-}" == "--no-freeze" ]] && FREEZE=0

VERSION="$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
ARCH="$(dpkg --print-architecture 2>/dev/null || uname -m)"
MACHINE="$(uname -m)"
REPORT="$DIST/build-report.txt"
mkdir -p "$DIST" "$WORK"

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
human() { du -sh --apparent-size "$1" | cut -f1; }

if [[ ! -f resources/models/demo/model_index.json ]]; then
    if [[ "${SDSTUDIO_ALLOW_NO_DEMO:-0}" != 1 ]]; then
        echo "error: resources/models/demo is missing; the installer must ship the demo model" >&2
        echo "       (set SDSTUDIO_ALLOW_NO_DEMO=1 to build anyway, for testing the packaging)" >&2
        exit 1
    fi
    log "warning: building WITHOUT the demo model"
fi

t_start=$(date +%s)
if [[ $FREEZE == 1 ]]; then
    log "PyInstaller (log: $WORK/pyinstaller.log)"
    rm -rf "$APP"
    "$PYTHON" -m PyInstaller --noconfirm --log-level WARN \
        --distpath "$DIST" --workpath "$WORK" packaging/sdstudio.spec >"$WORK/pyinstaller.log" 2>&1 \
        || { tail -40 "$WORK/pyinstaller.log"; exit 1; }
    # torch's libraries ship with their symbol tables; strip them (-70 MB). Only torch's: stripping
    # libraries that auditwheel patched (numpy.libs, scipy.libs, ...) can break them.
    if command -v strip >/dev/null; then
        find "$APP/_internal/torch/lib" -name 'lib*.so*' -type f -exec strip --strip-unneeded {} +
    fi
fi
[[ -x "$APP/sdstudio" ]] || { echo "error: no folder build at $APP" >&2; exit 1; }
if [[ $FREEZE == 0 ]]; then
    log "copying resources/ into the folder build"
    rm -rf "$APP/_internal/resources"
    cp -a resources "$APP/_internal/resources"
fi
# Everyone may read (and run) what is installed: files from the build tree can be private
# (the demo model's weights were written 0600), which would lock other users out under /opt.
chmod -R u+rwX,go+rX,go-w "$APP"
t_frozen=$(date +%s)

# ---- .tar.gz of the folder -----------------------------------------------------------------
TARBALL="$DIST/sdstudio-$VERSION-linux-$MACHINE.tar.gz"
log "tar.gz"
tar -C "$DIST" -cf - sdstudio | gzip -6 >"$TARBALL"
t_tar=$(date +%s)

# ---- .deb: /opt/sdstudio, /usr/bin/sdstudio link, menu entry and icons ----------------------
log ".deb ($DEB_COMPRESS)"
STAGE="$WORK/deb/sdstudio_${VERSION}_$ARCH"
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
    "$STAGE/usr/share/icons/hicolor/256x256/apps" "$STAGE/usr/share/icons/hicolor/scalable/apps"
cp -al "$APP" "$STAGE/opt/sdstudio" 2>/dev/null || cp -a "$APP" "$STAGE/opt/sdstudio"
ln -s ../../opt/sdstudio/sdstudio "$STAGE/usr/bin/sdstudio"  # relative: also right under dpkg --root
install -m 644 packaging/linux/sdstudio.desktop "$STAGE/usr/share/applications/sdstudio.desktop"
install -m 644 resources/icons/sdstudio.png "$STAGE/usr/share/icons/hicolor/256x256/apps/sdstudio.png"
install -m 644 resources/icons/sdstudio.svg "$STAGE/usr/share/icons/hicolor/scalable/apps/sdstudio.svg"
install -m 755 packaging/linux/postinst packaging/linux/postrm "$STAGE/DEBIAN/"

DEPENDS="$(bash packaging/deb_depends.sh "$APP")"
cat >"$STAGE/DEBIAN/control" <<EOF
Package: sdstudio
Version: $VERSION
Architecture: $ARCH
Maintainer: sdstudio developers <sdstudio@localhost>
Installed-Size: $(du -sk "$STAGE/opt" | cut -f1)
Depends: $DEPENDS
Section: graphics
Priority: optional
Description: desktop studio for Stable Diffusion
 Type a prompt, press Generate and watch the image form step by step, with its
 four latent channels beside it; every result is kept in a searchable gallery.
 Ships a small demo model that runs on a CPU, and opens SD 1.x checkpoints.
 Self-contained: Python, torch, diffusers and Qt are bundled under /opt/sdstudio.
EOF
DEB="$DIST/sdstudio_${VERSION}_$ARCH.deb"
dpkg-deb --root-owner-group -Z"$DEB_COMPRESS" --build "$STAGE" "$DEB" >/dev/null
rm -rf "$WORK/deb"
t_deb=$(date +%s)

# ---- report --------------------------------------------------------------------------------
{
    echo "sdstudio $VERSION packaged build, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPU cores"
    echo "folder   $(human "$APP")  ($APP, $(find "$APP" -type f | wc -l) files)"
    echo "  torch  $(human "$APP/_internal/torch")   Qt/PySide6 $(human "$APP/_internal/PySide6")   demo model $( [[ -d "$APP/_internal/resources/models/demo" ]] && human "$APP/_internal/resources/models/demo" || echo none)"
    echo "tar.gz   $(human "$TARBALL")  ($(basename "$TARBALL"))"
    echo ".deb     $(human "$DEB")  ($(basename "$DEB"), $DEB_COMPRESS)"
    [[ $FREEZE == 1 ]] && echo "time     PyInstaller+strip $((t_frozen - t_start)) s, tar.gz $((t_tar - t_frozen)) s, .deb $((t_deb - t_tar)) s, total $((t_deb - t_start)) s"
    echo "Depends: $DEPENDS"
} | tee "$REPORT"
