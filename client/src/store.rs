//! IndexedDB: one object store of named, sealed records (see `messenger` for the names).
//!
//! A commit is one `readwrite` transaction. IndexedDB runs overlapping `readwrite`
//! transactions in the order they were created and fires `complete` only once the data is
//! durable, so the app can create transactions synchronously, in order, and send the frames of
//! each one when its `complete` fires.

use js_sys::{Array, Promise, Uint8Array};
use thiserror::Error;
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbRequest, IdbTransaction, IdbTransactionMode};

const DB_NAME: &str = "sotto";
const STORE: &str = "records";

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    #[error("this browser does not let Sotto store data (private mode or storage disabled)")]
    Unavailable,
    #[error("the browser could not save data: {0}")]
    Failed(String),
}

fn failed(e: JsValue) -> StoreError {
    let text = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.dyn_ref::<web_sys::DomException>().map(|e| e.message()))
        .unwrap_or_else(|| format!("{e:?}"));
    StoreError::Failed(text)
}

/// Resolves with the request's result, or rejects with its error.
async fn request(req: IdbRequest) -> Result<JsValue, StoreError> {
    let promise = Promise::new(&mut |resolve, reject| {
        let r = req.clone();
        let ok = Closure::once_into_js(move || {
            let _ = resolve.call1(&JsValue::NULL, &r.result().unwrap_or(JsValue::UNDEFINED));
        });
        let r = req.clone();
        let err = Closure::once_into_js(move || {
            let e = r.error().ok().flatten().map(JsValue::from).unwrap_or(JsValue::NULL);
            let _ = reject.call1(&JsValue::NULL, &e);
        });
        req.set_onsuccess(Some(ok.unchecked_ref()));
        req.set_onerror(Some(err.unchecked_ref()));
    });
    JsFuture::from(promise).await.map_err(failed)
}

/// Resolves when the transaction is durable; rejects if it aborts.
fn completion(tx: &IdbTransaction) -> JsFuture {
    let promise = Promise::new(&mut |resolve, reject| {
        let done = Closure::once_into_js(move || {
            let _ = resolve.call0(&JsValue::NULL);
        });
        let t = tx.clone();
        let fail = Closure::once_into_js(move || {
            let e = t.error().map(JsValue::from).unwrap_or_else(|| JsValue::from_str("transaction aborted"));
            let _ = reject.call1(&JsValue::NULL, &e);
        });
        tx.set_oncomplete(Some(done.unchecked_ref()));
        tx.set_onabort(Some(fail.unchecked_ref()));
    });
    JsFuture::from(promise)
}

#[derive(Clone)]
pub struct Store {
    db: IdbDatabase,
}

impl Store {
    pub async fn open() -> Result<Store, StoreError> {
        let factory =
            web_sys::window().and_then(|w| w.indexed_db().ok().flatten()).ok_or(StoreError::Unavailable)?;
        let req = factory.open_with_u32(DB_NAME, 1).map_err(|_| StoreError::Unavailable)?;
        let r = req.clone();
        let upgrade = Closure::once_into_js(move || {
            if let Ok(db) = r.result().and_then(|d| d.dyn_into::<IdbDatabase>()) {
                let _ = db.create_object_store(STORE);
            }
        });
        req.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
        let db = request(req.into()).await?.dyn_into::<IdbDatabase>().map_err(failed)?;
        Ok(Store { db })
    }

    fn transaction(&self, mode: IdbTransactionMode) -> Result<IdbTransaction, StoreError> {
        self.db.transaction_with_str_and_mode(STORE, mode).map_err(failed)
    }

    /// Every record, by name.
    pub async fn load_all(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let tx = self.transaction(IdbTransactionMode::Readonly)?;
        let store = tx.object_store(STORE).map_err(failed)?;
        let keys: Array = request(store.get_all_keys().map_err(failed)?).await?.unchecked_into();
        let values: Array = request(store.get_all().map_err(failed)?).await?.unchecked_into();
        Ok(keys
            .iter()
            .zip(values.iter())
            .filter_map(|(k, v)| Some((k.as_string()?, v.dyn_into::<Uint8Array>().ok()?.to_vec())))
            .collect())
    }

    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.transaction(IdbTransactionMode::Readonly)?;
        let store = tx.object_store(STORE).map_err(failed)?;
        let v = request(store.get(&JsValue::from_str(name)).map_err(failed)?).await?;
        Ok(v.dyn_into::<Uint8Array>().ok().map(|a| a.to_vec()))
    }

    /// Starts one transaction with every write (and, first, a wipe if `clear`); the returned
    /// future resolves once it is durable. The transaction is created before this returns.
    pub fn commit(
        &self,
        writes: Vec<(String, Option<Vec<u8>>)>,
        clear: bool,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + use<> {
        let started = (|| {
            let tx = self.transaction(IdbTransactionMode::Readwrite)?;
            let done = completion(&tx);
            let store = tx.object_store(STORE).map_err(failed)?;
            if clear {
                store.clear().map_err(failed)?;
            }
            for (name, value) in &writes {
                let key = JsValue::from_str(name);
                match value {
                    Some(v) => store.put_with_key(&Uint8Array::from(v.as_slice()), &key).map(drop),
                    None => store.delete(&key).map(drop),
                }
                .map_err(failed)?;
            }
            Ok::<_, StoreError>(done)
        })();
        async move {
            started?.await.map_err(failed)?;
            Ok(())
        }
    }
}
