#!/usr/bin/env bash
# macOS disk image (a sketch: not tested, no Mac here). On a Mac, from the repository root:
#   .venv/bin/pyinstaller --noconfirm --distpath packaging/dist --workpath packaging/build packaging/sdstudio.spec
#   packaging/macos/make_dmg.sh
# The spec makes packaging/dist/sdstudio.app (BUNDLE). Sign and notarize it before shipping:
#   codesign --deep --force --options runtime --sign "Developer ID Application: ..." packaging/dist/sdstudio.app
#   xcrun notarytool submit packaging/dist/sdstudio-<v>.dmg --keychain-profile ... --wait
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION="$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
STAGE="$(mktemp -d)"
cp -R packaging/dist/sdstudio.app "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname sdstudio -srcfolder "$STAGE" -ov -format UDZO "packaging/dist/sdstudio-$VERSION.dmg"
rm -rf "$STAGE"
