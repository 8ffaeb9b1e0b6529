//! The memory store passes the suite every store must (the web app's IndexedDB store runs the
//! same suite in headless Chromium: `client/tests/browser.rs`).

use sotto_messenger::MemoryStore;
use sotto_messenger::store::conformance;

#[tokio::test]
async fn memory_store_conforms() {
    conformance::run(&MemoryStore::default()).await;
}
