// Loads the wasm app. Kept as a file (not inline) so the CSP can forbid inline script.
import init from "/sotto.js";
init({ module_or_path: "/sotto.wasm" }).catch((e) => {
  document.body.textContent = "Sotto could not start in this browser: " + e;
});
