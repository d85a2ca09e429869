#!/usr/bin/env bash
# Vendor the API docs assets (Swagger UI and ReDoc) into app/static/vendor/.
#
# `npm pack` downloads only the published tarball and runs no install scripts (swagger-ui-dist
# would otherwise run @scarf/scarf analytics). ReDoc stays on 2.x: the 3.x standalone bundle is
# an ES module, which flask-smorest's classic <script src> cannot load.
set -euo pipefail

SWAGGER_UI=swagger-ui-dist@5.35.0
REDOC=redoc@2.5.4

repo=$(cd "$(dirname "$0")/.." && pwd)
vendor="$repo/app/static/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

unpack() {  # unpack <pkg@version> <dir>: npm pack the package and extract it into <dir>
    local tarball
    tarball=$(cd "$work" && npm pack --silent "$1" | tail -n 1)
    mkdir -p "$2"
    tar -xzf "$work/$tarball" -C "$2" --strip-components=1
}

unpack "$SWAGGER_UI" "$work/swagger-ui"
unpack "$REDOC" "$work/redoc"

rm -rf "$vendor/swagger-ui" "$vendor/redoc"
mkdir -p "$vendor/swagger-ui" "$vendor/redoc"
cp "$work/swagger-ui/"{swagger-ui-bundle.js,swagger-ui-standalone-preset.js,swagger-ui.css,LICENSE} \
    "$vendor/swagger-ui/"
cp "$work/redoc/bundles/redoc.standalone.js" "$work/redoc/LICENSE" "$vendor/redoc/"

echo "vendored $SWAGGER_UI and $REDOC into ${vendor#"$repo"/}"
