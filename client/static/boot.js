// Loads the wasm app. Kept as a file (not inline) so the CSP can forbid inline script.
import init from "/sotto.js";
import * as files from "/files.js";

// The app calls the page's file plumbing (client/static/files.js) through this name.
globalThis.sottoFiles = files;
init({ module_or_path: "/sotto.wasm" }).catch((e) => {
  document.body.textContent = "Sotto could not start in this browser: " + e;
});
