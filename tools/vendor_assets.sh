#!/usr/bin/env bash
# Re-create book-assets/offline/ from the npm registry: MathJax 3 (typesets the book's mathematics) and the
# Jupyter widgets HTML manager with RequireJS (renders widget outputs), so the built HTML loads no script,
# stylesheet or font from another host.  Also re-create tools/vendor/axe/: axe-core, the accessibility
# engine tests/test_browser.py injects into every built page (WCAG 2.1 A/AA audit); it lives outside
# book-assets/ so that it is never shipped with the pages.  The results are committed: building and testing
# the book need neither Node nor the network.  Run this only to change a version, then rebuild and run
# `make test`.
#
#   tools/vendor_assets.sh            (needs npm; writes book-assets/offline/ and tools/vendor/axe/)
#   tools/vendor_assets.sh axe        (only tools/vendor/axe/)
#
# Only the files a page loads are kept (about 5.5 MB), with each package's licence.
set -euo pipefail

MATHJAX=mathjax@3.2.2
HTML_MANAGER=@jupyter-widgets/html-manager@1.0.15   # the manager for ipywidgets 8 (widget state 2.x)
REQUIREJS=requirejs@2.3.8
AXE=axe-core@4.14.1

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/book-assets/offline"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

cd "$TMP"

# axe-core: the one minified engine file and its licence (MPL-2.0), for the browser test only
AXE_DEST="$ROOT/tools/vendor/axe"
npm pack --silent "$AXE" >axe-packed.txt
mkdir -p x/axe && tar xzf "$(cat axe-packed.txt)" -C x/axe
rm -rf "$AXE_DEST" && mkdir -p "$AXE_DEST"
cp x/axe/package/axe.min.js x/axe/package/LICENSE "$AXE_DEST/"
{
    echo "# Vendored by tools/vendor_assets.sh on $(date -u +%Y-%m-%d) from the npm registry; injected by"
    echo "# tests/test_browser.py into the built pages it audits, never shipped in the book."
    echo "$AXE                              MPL-2.0 (LICENSE)"
    (cd "$AXE_DEST" && sha256sum axe.min.js LICENSE)
} >"$AXE_DEST/SOURCES.txt"
if [ "${1:-all}" = axe ]; then
    du -sh "$AXE_DEST"
    exit 0
fi

npm pack --silent "$MATHJAX" "$HTML_MANAGER" "$REQUIREJS" >packed.txt
for tgz in $(cat packed.txt); do
    mkdir -p "x/${tgz%.tgz}" && tar xzf "$tgz" -C "x/${tgz%.tgz}"
done
MJ="$(ls -d x/mathjax-*/package)"
HM="$(ls -d x/jupyter-widgets-html-manager-*/package)"
RQ="$(ls -d x/requirejs-*/package)"

rm -rf "$DEST" && mkdir -p "$DEST/mathjax/output/chtml/fonts" "$DEST/widgets"

# MathJax: the combined TeX-input / CommonHTML-output component with every TeX extension built in (so the
# autoloader never fetches a file), and the web fonts CommonHTML loads from [mathjax]/output/chtml/fonts/.
cp "$MJ/es5/tex-chtml-full.js" "$MJ/LICENSE" "$DEST/mathjax/"
cp -r "$MJ/es5/output/chtml/fonts/woff-v2" "$DEST/mathjax/output/chtml/fonts/"

# Widgets: RequireJS, the AMD embed bundle (controls, base and output widgets built in) and its icon fonts
# (woff2 is what every current browser picks first from the bundle's @font-face lists).
cp "$RQ/require.js" "$DEST/widgets/require.js"
cp "$HM/dist/embed-amd.js" "$HM/dist/embed.js.LICENSE.txt" "$DEST/widgets/"
cp "$HM"/dist/*.woff2 "$DEST/widgets/"
cp "$ROOT/tools/licenses/ipywidgets-BSD-3-Clause.txt" "$DEST/widgets/LICENSE"
cp "$ROOT/tools/licenses/requirejs-MIT.txt" "$DEST/widgets/LICENSE.requirejs"

{
    echo "# Vendored by tools/vendor_assets.sh on $(date -u +%Y-%m-%d) from the npm registry"
    echo "# package                                    licence"
    echo "$MATHJAX                              Apache-2.0 (mathjax/LICENSE)"
    echo "$HTML_MANAGER           BSD-3-Clause (widgets/LICENSE; bundled notices: widgets/embed.js.LICENSE.txt)"
    echo "$REQUIREJS                            MIT (widgets/LICENSE.requirejs)"
    echo "# sha256 of every file"
    (cd "$DEST" && find . -type f ! -name SOURCES.txt | sort | xargs sha256sum)
} >"$DEST/SOURCES.txt"
du -sh "$DEST"
