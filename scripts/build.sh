#!/usr/bin/env bash
# Builds the web app (wasm, optimized) into target/app, then the relay that embeds it.
#   scripts/build.sh            release relay (target/release/sotto-relay)
#   scripts/build.sh --app-only only the web app
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1mbuild:\033[0m %s\n' "$*"; }
out=target/app
stage=target/wasm-bindgen

say "client → wasm32 (profile wasm-release)"
cargo build --quiet -p sotto-client --bin sotto-client --target wasm32-unknown-unknown --profile wasm-release

say "wasm-bindgen"
rm -rf "$stage" && mkdir -p "$stage"
wasm-bindgen --target web --no-typescript --out-dir "$stage" --out-name sotto \
  target/wasm32-unknown-unknown/wasm-release/sotto-client.wasm

say "file worker → wasm32 with SIMD (profile worker-release)"
# Its own target dir: other RUSTFLAGS would make cargo rebuild the app's dependencies each time.
RUSTFLAGS="-C target-feature=+simd128" CARGO_TARGET_DIR=target/simd \
  cargo build --quiet -p sotto-worker --lib --target wasm32-unknown-unknown --profile worker-release
wasm-bindgen --target web --no-typescript --out-dir "$stage" --out-name worker \
  target/simd/wasm32-unknown-unknown/worker-release/sotto_worker.wasm

say "QR scanner → wasm32 (profile wasm-release)"
cargo build --quiet -p sotto-scanner --lib --target wasm32-unknown-unknown --profile wasm-release
wasm-bindgen --target web --no-typescript --out-dir "$stage" --out-name scanner \
  target/wasm32-unknown-unknown/wasm-release/sotto_scanner.wasm

if [ -x node_modules/.bin/wasm-opt ]; then
  say "wasm-opt -O3 (worker)"
  node_modules/.bin/wasm-opt -O3 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    -o "$stage/worker_opt.wasm" "$stage/worker_bg.wasm"
  mv "$stage/worker_opt.wasm" "$stage/worker_bg.wasm"
  say "wasm-opt -Oz"
  # --converge repeats the passes while they still shrink the module; the memory flags state
  # what holds for rustc's output (a fresh, zeroed memory of its own; nothing in the first
  # 1 KiB, which wasm-ld leaves free) and let it drop zero data and fold address offsets.
  node_modules/.bin/wasm-opt -Oz --converge --zero-filled-memory --low-memory-unused --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    -o "$stage/sotto_opt.wasm" "$stage/sotto_bg.wasm"
  mv "$stage/sotto_opt.wasm" "$stage/sotto_bg.wasm"
  node_modules/.bin/wasm-opt -Oz --converge --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    -o "$stage/scanner_opt.wasm" "$stage/scanner_bg.wasm"
  mv "$stage/scanner_opt.wasm" "$stage/scanner_bg.wasm"
else
  say "wasm-opt not installed (scripts/setup.sh installs it); wasm left unoptimized"
fi

# Content-addressed names, so the relay can tell browsers to cache them forever.
hash() { sha256sum "$1" | cut -c1-16; }
rm -rf "$out" && mkdir -p "$out"
wasm="sotto-$(hash "$stage/sotto_bg.wasm").wasm"
cp "$stage/sotto_bg.wasm" "$out/$wasm"
js="sotto-$(hash "$stage/sotto.js").js"
cp "$stage/sotto.js" "$out/$js"
# The file worker's chain: its wasm and glue, the worker script, the page's files module.
wwasm="worker-$(hash "$stage/worker_bg.wasm").wasm"
cp "$stage/worker_bg.wasm" "$out/$wwasm"
wjs="worker-$(hash "$stage/worker.js").js"
cp "$stage/worker.js" "$out/$wjs"
sed -e "s#\"/worker.js\"#\"/$wjs\"#; s#\"/worker.wasm\"#\"/$wwasm\"#" client/static/file-worker.js > "$stage/file-worker.js"
fworker="file-worker-$(hash "$stage/file-worker.js").js"
cp "$stage/file-worker.js" "$out/$fworker"
# The QR scanner's wasm and glue, which the page's files module imports when the camera opens.
swasm="scanner-$(hash "$stage/scanner_bg.wasm").wasm"
cp "$stage/scanner_bg.wasm" "$out/$swasm"
sjs="scanner-$(hash "$stage/scanner.js").js"
cp "$stage/scanner.js" "$out/$sjs"
sed -e "s#\"/file-worker.js\"#\"/$fworker\"#; s#\"/scanner.js\"#\"/$sjs\"#; s#\"/scanner.wasm\"#\"/$swasm\"#" \
  client/static/files.js > "$stage/files.js"
files="files-$(hash "$stage/files.js").js"
cp "$stage/files.js" "$out/$files"
sed -e "s#/sotto.js#/$js#; s#/sotto.wasm#/$wasm#; s#\"/files.js\"#\"/$files\"#" client/static/boot.js > "$stage/boot.js"
boot="boot-$(hash "$stage/boot.js").js"
cp "$stage/boot.js" "$out/$boot"
css="style-$(hash client/static/style.css).css"
cp client/static/style.css "$out/$css"
cp client/static/icon.svg client/static/manifest.webmanifest "$out/"
sed -e "s#/style.css#/$css#; s#/boot.js#/$boot#; s#/sotto.js#/$js#; s#/sotto.wasm#/$wasm#" index.html > "$out/index.html"
for f in "$out"/*; do gzip -9 -n -k "$f"; done
# Brotli copies too, when node is here (scripts/setup.sh installs it): smaller still.
if command -v node >/dev/null; then node scripts/brotli.mjs "$out"; fi

raw=$(stat -c %s "$out/$wasm"); gz=$(stat -c %s "$out/$wasm.gz")
br=$( [ -f "$out/$wasm.br" ] && stat -c %s "$out/$wasm.br" || echo none)
say "app in $out: wasm $raw bytes ($gz gzipped, $br with brotli)"

if [ "${1:-}" != "--app-only" ]; then
  say "relay (release, app embedded)"
  cargo build --quiet --release -p sotto-relay
  say "relay at target/release/sotto-relay ($(stat -c %s target/release/sotto-relay) bytes)"
fi
