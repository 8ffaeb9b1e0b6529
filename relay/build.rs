//! Embeds the built web app (scripts/build.sh writes it to `target/app`) into the relay binary,
//! so that copying the one binary to a server is a full install.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let app_dir =
        env::var_os("SOTTO_APP_DIR").map(PathBuf::from).unwrap_or_else(|| manifest.join("../target/app"));
    println!("cargo:rerun-if-env-changed=SOTTO_APP_DIR");
    println!("cargo:rerun-if-changed={}", app_dir.display());

    let mut files: Vec<PathBuf> = match fs::read_dir(&app_dir) {
        Ok(dir) => dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "gz" && x != "br"))
            .collect(),
        Err(_) => {
            println!(
                "cargo:warning=no web app at {} (run scripts/build.sh); the relay will say so at /",
                app_dir.display()
            );
            Vec::new()
        }
    };
    files.sort();

    let mut out = String::from("pub static ASSETS: &[Asset] = &[\n");
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.file_name().and_then(|n| n.to_str()).expect("asset names are UTF-8");
        let copy = |ext: &str| {
            let p = path.with_file_name(format!("{name}.{ext}"));
            if p.is_file() {
                println!("cargo:rerun-if-changed={}", p.display());
                format!("Some(include_bytes!({:?}))", abs(&p))
            } else {
                "None".to_string()
            }
        };
        let (gzip, brotli) = (copy("gz"), copy("br"));
        writeln!(
            out,
            "    Asset {{ path: {name:?}, mime: {:?}, immutable: {}, body: include_bytes!({:?}), gzip: {gzip}, brotli: {brotli} }},",
            mime(name),
            is_hashed(name),
            abs(path)
        )
        .expect("writing to a String cannot fail");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("assets.rs");
    fs::write(dest, out).expect("OUT_DIR is writable");
}

fn abs(p: &Path) -> String {
    fs::canonicalize(p).expect("asset exists").display().to_string()
}

fn mime(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webmanifest" => "application/manifest+json",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// scripts/build.sh names content-addressed files `stem-<16 hex digits>.ext`.
fn is_hashed(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or("");
    stem.rsplit_once('-').is_some_and(|(_, h)| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}
