// Writes a brotli copy (<file>.br, quality 11) beside each file of the built app, for browsers
// that take it (about a fifth smaller than gzip for the wasm). Run by scripts/build.sh.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants } from "node:zlib";

const dir = process.argv[2];
for (const name of readdirSync(dir)) {
  if (name.endsWith(".gz") || name.endsWith(".br")) continue;
  const body = readFileSync(join(dir, name));
  const params = { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length };
  writeFileSync(join(dir, name + ".br"), brotliCompressSync(body, { params }));
}
