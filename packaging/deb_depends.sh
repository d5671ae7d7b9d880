#!/usr/bin/env bash
# Print the .deb Depends line for a folder build: the Debian packages owning every shared library
# that the bundled binaries load from the system (PyInstaller leaves libc, libGL, fontconfig... out).
#   packaging/deb_depends.sh packaging/dist/sdstudio
set -euo pipefail
APP="$1"
INTERNAL="$APP/_internal"
FALLBACK="libc6, libstdc++6, libgl1, libegl1, libfontconfig1, libfreetype6, libx11-6, libx11-xcb1, libxkbcommon0, libxkbcommon-x11-0, libxcb1, libxcb-cursor0, libdbus-1-3, libglib2.0-0"
if ! command -v dpkg-query >/dev/null || ! command -v ldd >/dev/null; then
    echo "$FALLBACK"; exit 0
fi
# The bootloader puts _internal on the library path; ldd needs the same to tell bundled from system.
libs=$(find "$APP" -type f \( -name '*.so' -o -name '*.so.*' -o -name sdstudio \) -print0 |
    xargs -0 -n 50 env LD_LIBRARY_PATH="$INTERNAL" ldd 2>/dev/null |
    awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u | grep -v -F "$(cd "$APP" && pwd)" || true)
declare -A pkgs=()
for lib in $libs; do
    real=$(readlink -f "$lib")
    for candidate in "$lib" "$real" "/usr$lib" "${real#/usr}"; do
        owner=$(dpkg-query -S "$candidate" 2>/dev/null | head -1 | cut -d: -f1) || true
        if [[ -n "$owner" ]]; then pkgs[$owner]=1; break; fi
    done
done
if [[ ${#pkgs[@]} -eq 0 ]]; then echo "$FALLBACK"; exit 0; fi
printf '%s\n' "${!pkgs[@]}" | sort | paste -sd, | sed 's/,/, /g'
