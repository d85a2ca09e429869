#!/usr/bin/env bash
# Vendor the browser assets into app/static/vendor/: the API docs (Swagger UI, ReDoc) and the
# dashboard's htmx and uPlot, each with its licence.
#
# `npm pack` downloads only the published tarball and runs no install scripts (swagger-ui-dist
# would otherwise run @scarf/scarf analytics). ReDoc stays on 2.x: the 3.x standalone bundle is
# an ES module, which flask-smorest's classic <script src> cannot load. htmx stays on the 2.x
# line, deliberately: the dashboard's templates use 2.x idioms (DEPENDENCIES.md, gotcha 7).
set -euo pipefail

SWAGGER_UI=swagger-ui-dist@5.35.0
REDOC=redoc@2.5.4
HTMX=htmx.org@2.0.11
UPLOT=uplot@1.6.32

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
unpack "$HTMX" "$work/htmx"
unpack "$UPLOT" "$work/uplot"

rm -rf "$vendor/swagger-ui" "$vendor/redoc" "$vendor/htmx" "$vendor/uplot"
mkdir -p "$vendor/swagger-ui" "$vendor/redoc" "$vendor/htmx" "$vendor/uplot"
cp "$work/swagger-ui/"{swagger-ui-bundle.js,swagger-ui-standalone-preset.js,swagger-ui.css,LICENSE} \
    "$vendor/swagger-ui/"
cp "$work/redoc/bundles/redoc.standalone.js" "$work/redoc/LICENSE" "$vendor/redoc/"
cp "$work/htmx/dist/htmx.min.js" "$work/htmx/LICENSE" "$vendor/htmx/"
cp "$work/uplot/dist/uPlot.iife.min.js" "$work/uplot/dist/uPlot.min.css" "$work/uplot/LICENSE" \
    "$vendor/uplot/"

echo "vendored $SWAGGER_UI, $REDOC, $HTMX and $UPLOT into ${vendor#"$repo"/}"
