#!/usr/bin/env bash
# Smoke test of the Linux installer: build, install the .deb into a temporary root, run the packaged
# self-test offscreen, then start the window from its menu entry's Exec line under Xvfb, time it,
# generate once and take screenshots. Slow (it builds); not part of `make test`.
#
#   packaging/smoke_test.sh             # build + test
#   packaging/smoke_test.sh --no-build  # test the .deb already in packaging/dist/
#
# Needs: dpkg-deb, Xvfb, xdotool (or x11-utils' xwininfo), ImageMagick's `import` for screenshots.
#   apt-get install -y xvfb xdotool imagemagick libxcb-cursor0 libxkbcommon-x11-0 libegl1 libgl1
# Results: packaging/dist/smoke/ (screenshots, logs, smoke-report.txt).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DIST="$ROOT/packaging/dist"
OUT="$DIST/smoke"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
DISPLAY_NUM="${SMOKE_DISPLAY:-:97}"
SHOW_TIMEOUT="${SMOKE_SHOW_TIMEOUT:-120}"
GENERATE_WAIT="${SMOKE_GENERATE_WAIT:-150}"

[[ "${1:-}" == "--no-build" ]] || bash packaging/build.sh
DEB="$(ls -t "$DIST"/sdstudio_*.deb | head -1)"
rm -rf "$OUT" && mkdir -p "$OUT"
TMP="$(mktemp -d -t sdstudio-smoke-XXXXXX)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
REPORT="$OUT/smoke-report.txt"
say() { printf '[smoke] %s\n' "$*" | tee -a "$REPORT"; }
fail() { say "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}'; }

# ---- 1. the package itself -----------------------------------------------------------------
say "package $(basename "$DEB") ($(du -h --apparent-size "$DEB" | cut -f1))"
dpkg-deb --info "$DEB" >"$OUT/deb-info.txt"
dpkg-deb --contents "$DEB" >"$OUT/deb-contents.txt"
for path in ./opt/sdstudio/sdstudio ./usr/share/applications/sdstudio.desktop \
    ./usr/share/icons/hicolor/256x256/apps/sdstudio.png ./usr/share/icons/hicolor/scalable/apps/sdstudio.svg \
    ./usr/bin/sdstudio; do
    grep -q " $path\( \|$\)" "$OUT/deb-contents.txt" || fail "$path is not in the package"
done
unreadable="$(awk '$1 !~ /^l/ && substr($1, 8, 1) != "r" {print $NF}' "$OUT/deb-contents.txt" | head -3)"
[[ -z "$unreadable" ]] || fail "files other users cannot read: $unreadable"
grep -q '^ Depends:' "$OUT/deb-info.txt" && say "$(grep '^ Depends:' "$OUT/deb-info.txt" | sed 's/^ //')"

# dpkg itself installs and removes it (maintainer scripts included) in an empty database; the
# Depends are forced because that database knows no other package.
DPKG_ROOT="$TMP/dpkg-root"
mkdir -p "$DPKG_ROOT/var/lib/dpkg/info" "$DPKG_ROOT/var/lib/dpkg/updates"
touch "$DPKG_ROOT/var/lib/dpkg/status"
dpkg_r() { dpkg --root="$DPKG_ROOT" --force-script-chrootless --log=/dev/null "$@"; }
dpkg_r --force-depends -i "$DEB" >"$OUT/dpkg-install.log" 2>&1 || fail "dpkg -i failed (dpkg-install.log)"
[[ "$(dpkg-query --admindir="$DPKG_ROOT/var/lib/dpkg" -W -f='${Status}' sdstudio)" == "install ok installed" ]] \
    || fail "dpkg does not list sdstudio as installed"
dpkg_r -r sdstudio >>"$OUT/dpkg-install.log" 2>&1 || fail "dpkg -r failed"
[[ ! -e "$DPKG_ROOT/opt/sdstudio" ]] || fail "dpkg -r left /opt/sdstudio behind"
rm -rf "$DPKG_ROOT"
say "dpkg -i / dpkg -r into an empty root: ok"

# ---- 2. install into a temporary root (what dpkg -i would unpack, without touching /) -------
INSTALL="$TMP/root"
dpkg -x "$DEB" "$INSTALL"
DESKTOP="$INSTALL/usr/share/applications/sdstudio.desktop"
if command -v desktop-file-validate >/dev/null; then
    desktop-file-validate "$DESKTOP" || fail "the .desktop entry does not validate"
    say "desktop-file-validate: ok"
fi
EXEC_LINE="$(sed -n 's/^Exec=//p' "$DESKTOP" | head -1)"
[[ "$EXEC_LINE" == /opt/sdstudio/sdstudio* ]] || fail "unexpected Exec line: $EXEC_LINE"
APP="$INSTALL${EXEC_LINE%% *}"  # the Exec line's program, inside the temporary root
[[ -x "$APP" ]] || fail "$APP (from Exec=$EXEC_LINE) is not executable"
[[ "$(readlink -f "$INSTALL/usr/bin/sdstudio")" == "$(readlink -f "$APP")" ]] \
    || fail "/usr/bin/sdstudio does not point at the app"
say "installed into a temporary root; Exec=$EXEC_LINE"

# A clean environment: no virtual environment, no PYTHONPATH, a fresh home.
HOME_DIR="$TMP/home" && mkdir -p "$HOME_DIR"
run_clean() { env -i HOME="$HOME_DIR" PATH=/usr/bin:/bin LANG=C.UTF-8 "$@"; }

# The CLI answers through the /usr/bin link too.
run_clean "$INSTALL/usr/bin/sdstudio" --help >"$OUT/help.txt" 2>&1 || fail "sdstudio --help failed"

# ---- 3. the packaged self-test, offscreen --------------------------------------------------
MODEL_ENV=()
if [[ ! -f "$INSTALL/opt/sdstudio/_internal/resources/models/demo/model_index.json" ]]; then
    say "no demo model in the package: self-test with a tiny random model"
    "$PYTHON" -c "from sdstudio.testing.tiny_models import build_tiny_model as b; b('$TMP/tiny')" >/dev/null 2>&1
    MODEL_ENV=(SDSTUDIO_SELFTEST_MODEL="$TMP/tiny")
fi
t0=$(now)
rc=0
run_clean QT_QPA_PLATFORM=offscreen "${MODEL_ENV[@]}" "$APP" --self-test >"$OUT/selftest.log" 2>&1 || rc=$?
if [[ $rc != 0 ]]; then cat "$OUT/selftest.log"; fail "packaged self-test failed (exit $rc)"; fi
grep -qx 'self-test passed' "$OUT/selftest.log" || fail "self-test exited 0 without 'self-test passed'"
say "packaged self-test passed in $(since "$t0") s (log: selftest.log)"

# The packaged command line: txt2img, then img2img from that image (other lazy imports).
MODEL_ARG="${MODEL_ENV[0]:-SDSTUDIO_SELFTEST_MODEL=demo}"
MODEL_ARG="${MODEL_ARG#SDSTUDIO_SELFTEST_MODEL=}"
t0=$(now)
run_clean "$APP" generate "a red circle" --model "$MODEL_ARG" --steps 3 --seed 7 --out "$TMP/gen" \
    >"$OUT/generate.log" 2>&1 || { cat "$OUT/generate.log"; fail "packaged 'sdstudio generate' failed"; }
FIRST="$(find "$TMP/gen" -name '*.png' | head -1)"
[[ -n "$FIRST" ]] || fail "'sdstudio generate' wrote no PNG"
run_clean "$APP" generate "a blue square" --model "$MODEL_ARG" --steps 3 --init-image "$FIRST" \
    --strength 0.6 --out "$TMP/img2img" >>"$OUT/generate.log" 2>&1 \
    || { cat "$OUT/generate.log"; fail "packaged img2img failed"; }
cp "$FIRST" "$OUT/cli-txt2img.png"
say "packaged CLI txt2img + img2img ok in $(since "$t0") s"

# ---- 4. the window under Xvfb: time to shown, screenshots, one generation -----------------
command -v Xvfb >/dev/null || { say "no Xvfb: window test skipped"; exit 0; }
Xvfb "$DISPLAY_NUM" -screen 0 1600x1000x24 -nolisten tcp >"$OUT/xvfb.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do xdpyinfo -display "$DISPLAY_NUM" >/dev/null 2>&1 && break; sleep 0.1; done

window_id() {  # the id of the visible sdstudio main window, or nothing
    if command -v xdotool >/dev/null; then
        DISPLAY="$DISPLAY_NUM" xdotool search --onlyvisible --name '^sdstudio' 2>/dev/null | head -1
    else
        DISPLAY="$DISPLAY_NUM" xwininfo -name sdstudio 2>/dev/null | grep -q IsViewable && echo 1
    fi
}
shot() { DISPLAY="$DISPLAY_NUM" import -window root "$OUT/$1" 2>/dev/null && say "screenshot $1"; }

PID="" SHOWN=""
launch() {  # $1: label; starts the app like the menu does; sets PID and SHOWN (seconds to shown)
    local t0
    t0=$(now)
    # Not through run_clean: $! must be the app itself, so that `kill $PID` closes it.
    env -i HOME="$HOME_DIR" PATH=/usr/bin:/bin LANG=C.UTF-8 DISPLAY="$DISPLAY_NUM" "$APP" \
        >"$OUT/window-$1.log" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq $((SHOW_TIMEOUT * 20))); do
        if [[ -n "$(window_id)" ]]; then SHOWN="$(since "$t0")"; return 0; fi
        kill -0 "$PID" 2>/dev/null || { cat "$OUT/window-$1.log"; return 1; }
        sleep 0.05
    done
    return 1
}

launch cold || fail "the window did not show within ${SHOW_TIMEOUT} s"
say "launch to window shown (first start): $SHOWN s"
sleep 2 && shot window-shown.png
kill "$PID" && wait "$PID" 2>/dev/null || true
sleep 1

[[ -z "$(window_id)" ]] || fail "the first window is still open"
launch warm || fail "the window did not show the second time"
say "launch to window shown (second start, files cached): $SHOWN s"

# Generate once with the default model and prompt: focus the window, Ctrl+Return, then wait for
# the gallery to save a PNG under the fresh home (or GENERATE_WAIT seconds), with screenshots.
if command -v xdotool >/dev/null; then
    WID="$(window_id)"
    sleep 5  # let the worker import torch and load the model
    export DISPLAY="$DISPLAY_NUM"
    touch "$TMP/before-generate"
    xdotool mousemove --window "$WID" 600 300 windowfocus --sync "$WID" 2>/dev/null || true
    xdotool key --clearmodifiers ctrl+Return
    t0=$(now) saved=""
    for i in $(seq "$GENERATE_WAIT"); do
        [[ $i == 20 ]] && shot window-generating.png
        saved="$(find "$HOME_DIR" -name '*.png' -newer "$TMP/before-generate" 2>/dev/null | head -1)"
        [[ -n "$saved" ]] && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 1
    done
    if [[ -n "$saved" ]]; then
        say "generated from the window in $(since "$t0") s (saved ${saved#"$HOME_DIR"/})"
        sleep 2
    else
        say "no PNG in the gallery folder within ${GENERATE_WAIT} s of Ctrl+Return (the session gallery may not save to disk): see window-generated.png"
    fi
    shot window-generated.png
    unset DISPLAY
fi
kill -0 "$PID" 2>/dev/null || fail "the app died while generating (see window-warm.log)"
kill "$PID" && wait "$PID" 2>/dev/null || true
say "smoke test passed"
