//! Entry point of the web app: wasm-bindgen's start hook calls `main`.

fn main() {
    #[cfg(target_arch = "wasm32")]
    sotto_client::start();
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("sotto-client is a web app: build it with scripts/build.sh and open the relay in a browser");
}
