//! IndexedDB: one object store of named records. [`Idb`] holds them as given (the vault header
//! and backups are written raw); [`Sealed`] is the messenger's [`RecordStore`] over it, sealing
//! each record with the vault under its name.
//!
//! A commit is one `readwrite` transaction with `durability: "strict"`. IndexedDB runs
//! overlapping transactions in the order they were created and, with that option, fires
//! `complete` only once the data is on disk, so the app creates transactions synchronously, in
//! order, and sends the frames of each one when its `complete` fires.

use crate::layout::{self, INDEX_RECORD, Index, LAYOUT, LAYOUT_RECORD, VAULT_RECORD};
use js_sys::{Function, Promise, Uint8Array};
use sotto_engine::vault::{Names, Vault};
use sotto_messenger::store::Saving;
use sotto_messenger::{Order, RecordBytes, RecordKey, RecordRange, RecordStore, RecordWrites, StoreError};
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    IdbCursorDirection, IdbCursorWithValue, IdbDatabase, IdbKeyRange, IdbObjectStore, IdbRequest,
    IdbTransaction, IdbTransactionMode,
};

/// The app's database.
pub const DB_NAME: &str = "sotto";
const STORE: &str = "records";

fn failed(e: JsValue) -> StoreError {
    let text = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.dyn_ref::<web_sys::DomException>().map(|e| e.message()))
        .unwrap_or_else(|| format!("{e:?}"));
    StoreError::Failed(text)
}

/// Resolves with the request's result, or rejects with its error. Its handlers are attached
/// at the call, before the request can finish.
fn request(req: IdbRequest) -> impl Future<Output = Result<JsValue, StoreError>> {
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
    let done = JsFuture::from(promise);
    async move { done.await.map_err(failed) }
}

/// Named records, as read.
type Named = Vec<(String, Vec<u8>)>;

/// Walks a cursor request, collecting at most `limit` records. Its handlers are attached at
/// the call, before the cursor can move.
fn walk(req: IdbRequest, limit: usize) -> impl Future<Output = Result<Named, StoreError>> {
    let settle: Rc<RefCell<Option<(Function, Function)>>> = Rc::default();
    let promise = Promise::new(&mut |resolve, reject| *settle.borrow_mut() = Some((resolve, reject)));
    let found: Rc<RefCell<Named>> = Rc::default();
    let (r, out, done) = (req.clone(), found.clone(), settle.clone());
    // Called once per record (and once more, with no cursor, at the end of the range).
    let step = Closure::<dyn FnMut()>::new(move || {
        let cursor = r.result().ok().and_then(|c| c.dyn_into::<IdbCursorWithValue>().ok());
        // A record this app did not write, or a cursor that cannot move on, fails the read:
        // a short range must never pass for the whole of it.
        let outcome = match &cursor {
            None => Ok(false),
            Some(c) => match (c.key().ok().and_then(|k| k.as_string()), c.value()) {
                (Some(name), Ok(value)) => match value.dyn_into::<Uint8Array>() {
                    Ok(bytes) => {
                        out.borrow_mut().push((name, bytes.to_vec()));
                        let more = out.borrow().len() < limit;
                        if more { c.continue_().map(|()| true) } else { Ok(false) }
                    }
                    Err(_) => Err(JsValue::from_str(&format!("record {name} is not bytes"))),
                },
                _ => Err(JsValue::from_str("a record without a readable name")),
            },
        };
        if let Ok(true) = outcome {
            return;
        }
        if let Some((resolve, reject)) = done.borrow_mut().take() {
            let _ = match outcome {
                Err(e) => reject.call1(&JsValue::NULL, &e),
                Ok(_) => resolve.call0(&JsValue::NULL),
            };
        }
    });
    let (r, done) = (req.clone(), settle.clone());
    let fail = Closure::<dyn FnMut()>::new(move || {
        let e = r.error().ok().flatten().map(JsValue::from).unwrap_or(JsValue::NULL);
        if let Some((_, reject)) = done.borrow_mut().take() {
            let _ = reject.call1(&JsValue::NULL, &e);
        }
    });
    req.set_onsuccess(Some(step.as_ref().unchecked_ref()));
    req.set_onerror(Some(fail.as_ref().unchecked_ref()));
    let handlers = Handlers { req, _step: step, _fail: fail };
    let done = JsFuture::from(promise);
    async move {
        let result = done.await.map_err(failed);
        drop(handlers);
        result?;
        Ok(found.take())
    }
}

/// A cursor's handlers, detached when the walk ends or is given up (a dropped future), before
/// the closures they call are freed.
struct Handlers {
    req: IdbRequest,
    _step: Closure<dyn FnMut()>,
    _fail: Closure<dyn FnMut()>,
}

impl Drop for Handlers {
    fn drop(&mut self) {
        self.req.set_onsuccess(None);
        self.req.set_onerror(None);
    }
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

/// Waits for write transaction `tx` (registered in `writing` when it was started) to finish.
/// If it aborts, every write transaction started after it is aborted too (see `Idb::commit`).
async fn finished(
    writing: &RefCell<Vec<IdbTransaction>>,
    tx: IdbTransaction,
    done: JsFuture,
) -> Result<(), StoreError> {
    let result = done.await;
    let mut queue = writing.borrow_mut();
    let at = queue.iter().position(|t| *t == tx);
    if result.is_err() {
        for later in at.map_or(0, |i| i + 1)..queue.len() {
            let _ = queue[later].abort();
        }
    }
    if let Some(i) = at {
        queue.remove(i);
    }
    result.map(drop).map_err(failed)
}

/// Named records as given.
#[derive(Clone)]
pub struct Idb {
    db: IdbDatabase,
    /// Write transactions not yet complete, oldest first (see `commit`).
    writing: Rc<RefCell<Vec<IdbTransaction>>>,
}

impl Idb {
    pub async fn open(name: &str) -> Result<Idb, StoreError> {
        let factory =
            web_sys::window().and_then(|w| w.indexed_db().ok().flatten()).ok_or(StoreError::Unavailable)?;
        let req = factory.open_with_u32(name, 1).map_err(|_| StoreError::Unavailable)?;
        let r = req.clone();
        let upgrade = Closure::once_into_js(move || {
            if let Ok(db) = r.result().and_then(|d| d.dyn_into::<IdbDatabase>()) {
                let _ = db.create_object_store(STORE);
            }
        });
        req.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
        let db = request(req.into()).await?.dyn_into::<IdbDatabase>().map_err(failed)?;
        Ok(Idb { db, writing: Rc::default() })
    }

    fn records(&self, mode: IdbTransactionMode) -> Result<(IdbTransaction, IdbObjectStore), StoreError> {
        let tx = match mode {
            IdbTransactionMode::Readwrite => self.strict_readwrite(),
            _ => self.db.transaction_with_str_and_mode(STORE, mode),
        }
        .map_err(failed)?;
        let store = tx.object_store(STORE).map_err(failed)?;
        Ok((tx, store))
    }

    /// A `readwrite` transaction with `durability: "strict"`: `complete` fires only once the
    /// data is on disk, not merely handed to the OS (browsers default to "relaxed"), so a
    /// power loss cannot roll back ratchet state whose ciphertext already left, nor a message
    /// whose `Ack` did. (Through `Reflect`: web-sys has the option only as an unstable API.)
    fn strict_readwrite(&self) -> Result<IdbTransaction, JsValue> {
        let options = js_sys::Object::new();
        js_sys::Reflect::set(&options, &"durability".into(), &"strict".into())?;
        let open: Function = js_sys::Reflect::get(&self.db, &"transaction".into())?.dyn_into()?;
        open.call3(&self.db, &STORE.into(), &"readwrite".into(), &options)?.dyn_into()
    }

    /// Every record, by name (for backups).
    pub async fn load_all(&self) -> Result<Named, StoreError> {
        let (_, store) = self.records(IdbTransactionMode::Readonly)?;
        walk(store.open_cursor().map_err(failed)?, usize::MAX).await
    }

    /// Reads one record; the read starts at the call.
    pub fn get(&self, name: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + use<> {
        let reading = self
            .records(IdbTransactionMode::Readonly)
            .and_then(|(_, store)| store.get(&JsValue::from_str(name)).map_err(failed))
            .map(request);
        async move {
            let v = reading?.await?;
            Ok(v.dyn_into::<Uint8Array>().ok().map(|a| a.to_vec()))
        }
    }

    /// The records named `lower..upper`, in `order`, at most `limit`; the read starts at the
    /// call.
    pub fn range(
        &self,
        (lower, upper): (String, String),
        order: Order,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Named, StoreError>> + use<> {
        let limit = limit.unwrap_or(usize::MAX);
        // One cursor for both orders: a page is small, and one read path is less code.
        let direction = match order {
            Order::Ascending => IdbCursorDirection::Next,
            Order::Descending => IdbCursorDirection::Prev,
        };
        let reading = (|| {
            let (_, store) = self.records(IdbTransactionMode::Readonly)?;
            let range = IdbKeyRange::bound_with_lower_open_and_upper_open(
                &JsValue::from_str(&lower),
                &JsValue::from_str(&upper),
                false,
                true,
            )
            .map_err(failed)?;
            let cursor = store.open_cursor_with_range_and_direction(&range, direction).map_err(failed)?;
            Ok::<_, StoreError>(walk(cursor, limit))
        })();
        // IndexedDB refuses a reversed range; it has nothing in it.
        let empty = limit == 0 || lower >= upper;
        async move {
            if empty {
                return Ok(Vec::new());
            }
            reading?.await
        }
    }

    /// Rewrites every record in one transaction started at the call (transactions started
    /// later see the result): `map` turns each record into the one to keep in its place
    /// (perhaps under another name), or `None` to drop it; then `extra` records are written
    /// over them. If `map` fails for any record, nothing changes.
    pub fn rewrite(
        &self,
        map: impl Fn(&str, &[u8]) -> Result<Option<(String, Vec<u8>)>, ()> + 'static,
        extra: Vec<(String, Vec<u8>)>,
    ) -> Saving {
        let started = self.records(IdbTransactionMode::Readwrite).and_then(|(tx, store)| {
            let done = completion(&tx);
            let req = store.open_cursor().map_err(failed)?;
            let (r, t) = (req.clone(), tx.clone());
            // Collected first, written once every record is read: a new name could otherwise
            // come up again under the cursor.
            let mut kept: Vec<(String, Vec<u8>)> = Vec::new();
            let mut extra = Some(extra);
            let step = Closure::<dyn FnMut()>::new(move || {
                let Some(c) = r.result().ok().and_then(|c| c.dyn_into::<IdbCursorWithValue>().ok()) else {
                    let Some(extra) = extra.take() else { return };
                    let written = store.clear().is_ok()
                        && std::mem::take(&mut kept).into_iter().chain(extra).all(|(name, value)| {
                            store.put_with_key(&Uint8Array::from(value.as_slice()), &name.into()).is_ok()
                        });
                    if !written {
                        let _ = t.abort();
                    }
                    return;
                };
                let name = c.key().ok().and_then(|k| k.as_string());
                let value = c.value().ok().and_then(|v| v.dyn_into::<Uint8Array>().ok());
                let mapped = match (name, value) {
                    (Some(name), Some(value)) => map(&name, &value.to_vec()),
                    _ => Err(()),
                };
                match mapped {
                    Ok(record) if c.continue_().is_ok() => kept.extend(record),
                    _ => {
                        let _ = t.abort();
                    }
                }
            });
            req.set_onsuccess(Some(step.as_ref().unchecked_ref()));
            let t = tx.clone();
            let fail = Closure::<dyn FnMut()>::new(move || {
                let _ = t.abort();
            });
            req.set_onerror(Some(fail.as_ref().unchecked_ref()));
            self.writing.borrow_mut().push(tx.clone());
            Ok((tx, done, Handlers { req, _step: step, _fail: fail }))
        });
        let writing = self.writing.clone();
        Box::pin(async move {
            let (tx, done, _handlers) = started?;
            finished(&writing, tx, done).await
        })
    }

    /// Starts one transaction with every write (and, first, a wipe if `clear`); the returned
    /// future resolves once it is durable. The transaction is created before this returns.
    ///
    /// If a transaction aborts, every write transaction started after it is aborted too (they
    /// run one after another, so none has committed yet): a later commit must not land without
    /// an earlier one it builds on (a receipt's ratchet state without the message it
    /// acknowledges).
    pub fn commit(&self, writes: Vec<(String, Option<Vec<u8>>)>, clear: bool) -> Saving {
        let started = self.records(IdbTransactionMode::Readwrite).and_then(|(tx, store)| {
            let done = completion(&tx);
            let queued = (|| {
                if clear {
                    store.clear()?;
                }
                for (name, value) in &writes {
                    let key = JsValue::from_str(name);
                    match value {
                        Some(v) => store.put_with_key(&Uint8Array::from(v.as_slice()), &key).map(drop),
                        None => store.delete(&key).map(drop),
                    }?;
                }
                Ok::<_, JsValue>(())
            })();
            if let Err(e) = queued {
                // Part of the batch is queued: it must not commit on its own.
                let _ = tx.abort();
                return Err(failed(e));
            }
            self.writing.borrow_mut().push(tx.clone());
            Ok((tx, done))
        });
        let writing = self.writing.clone();
        Box::pin(async move {
            let (tx, done) = started?;
            finished(&writing, tx, done).await
        })
    }
}

/// The messenger's records in [`Idb`], laid out as `layout` says: each under a keyed name,
/// sealed with the vault, bound to that name, and checked against the index of epochs when
/// read. The vault can be replaced (a new passphrase makes a new data key, see
/// [`Sealed::reseal`]); every read and write uses the vault current when it is called, which
/// matches the records it is ordered with. Open an existing store with [`Sealed::open`].
#[derive(Clone)]
pub struct Sealed {
    idb: Idb,
    vault: Rc<RefCell<Rc<Vault>>>,
    /// As the last commit leaves it (commits are ordered at the call, so this is what every
    /// read started now will find).
    index: Rc<RefCell<Index>>,
}

impl Sealed {
    /// Over an empty store, or one opened with [`Sealed::open`].
    pub fn new(idb: Idb, vault: Rc<Vault>) -> Sealed {
        Sealed { idb, vault: Rc::new(RefCell::new(vault)), index: Rc::default() }
    }

    /// Over the store `idb` holds: brought to this layout first if it is older (in one
    /// transaction), then its index read.
    pub async fn open(idb: Idb, vault: Rc<Vault>) -> Result<Sealed, StoreError> {
        let store = Sealed::new(idb, vault);
        if store.idb.get(LAYOUT_RECORD).await?.as_deref() != Some([LAYOUT].as_slice()) {
            store.upgrade().await?;
        }
        let sealed = store.idb.get(INDEX_RECORD).await?;
        let index = match sealed {
            Some(sealed) => layout::open_index(&store.current(), &sealed)?,
            None => return Err(StoreError::Damaged(format!("no {INDEX_RECORD}"))),
        };
        *store.index.borrow_mut() = index;
        Ok(store)
    }

    /// The vault records are sealed with now.
    pub fn current(&self) -> Rc<Vault> {
        self.vault.borrow().clone()
    }

    /// Re-seals every record under `to` (under its names, so they change too) and stores
    /// `header` for it, in one transaction; reads and writes called from now on use `to`. Each
    /// record is checked against the index as it is moved. If the transaction fails, the old
    /// vault is put back at once (in the same turn as the abort of every later write), so
    /// nothing written afterwards is sealed under a key whose header never landed.
    pub fn reseal(&self, to: Rc<Vault>, header: Vec<u8>) -> Saving {
        let old = self.current();
        let keys = layout::names(&old).and_then(|from| Ok((from, layout::names(&to)?)));
        let Ok((from_names, to_names)) = keys else {
            return Box::pin(std::future::ready(Err(StoreError::Failed("no record names key".into()))));
        };
        // What the store will hold when the rewrite runs (every earlier commit comes first).
        let index = self.index.borrow().clone();
        let (from, target) = (old.clone(), to.clone());
        let saving = self.idb.rewrite(
            move |name, value| {
                if layout::is_raw(name) {
                    return Ok(Some((name.to_string(), value.to_vec())));
                }
                if name == INDEX_RECORD {
                    return layout::seal_index(&target, &index).map(Some).map_err(drop);
                }
                let moved = layout::reseal_one(
                    name,
                    value,
                    LAYOUT,
                    (&from, &from_names),
                    (&target, &to_names),
                    Some(&index),
                );
                Ok(moved.map_err(drop)?.map(|m| m.record))
            },
            vec![(VAULT_RECORD.to_string(), header), layout::layout_record()],
        );
        *self.vault.borrow_mut() = to;
        let cell = self.vault.clone();
        Box::pin(async move {
            let result = saving.await;
            if result.is_err() {
                *cell.borrow_mut() = old;
            }
            result
        })
    }

    /// Brings a store written in layout 1 (names in the clear, no epochs) to this layout, in
    /// one transaction, with an index of its records at epoch 0. Records of kinds this version
    /// does not know (a newer version's) cannot be re-keyed and are dropped.
    async fn upgrade(&self) -> Result<(), StoreError> {
        let vault = self.current();
        let names = layout::names(&vault)?;
        let mut index = Index::default();
        for (name, _) in self.idb.load_all().await? {
            if let Some(key) = RecordKey::parse(&name) {
                index.note(&key, true);
            }
        }
        let extra = vec![layout::layout_record(), layout::seal_index(&vault, &index)?];
        self.idb
            .rewrite(
                move |name, value| {
                    if layout::is_raw(name) {
                        return Ok(Some((name.to_string(), value.to_vec())));
                    }
                    let moved = layout::reseal_one(name, value, 1, (&vault, &names), (&vault, &names), None);
                    Ok(moved.map_err(drop)?.map(|m| m.record))
                },
                extra,
            )
            .await
    }

    fn names(&self) -> Result<(Rc<Vault>, Names), StoreError> {
        let vault = self.current();
        let names = layout::names(&vault)?;
        Ok((vault, names))
    }
}

impl RecordStore for Sealed {
    fn save_changes(&self, changes: RecordWrites) -> Saving {
        let sealed = self.names().and_then(|(vault, names)| {
            let mut index = self.index.borrow_mut();
            let epoch = index.advance();
            let mut writes = changes
                .into_iter()
                .map(|(key, value)| {
                    index.note(&key, value.is_some());
                    match value {
                        Some(body) => {
                            layout::seal(&vault, &names, &key, epoch, &body).map(|(n, v)| (n, Some(v)))
                        }
                        None => Ok((key.stored(|part| names.keyed(part)), None)),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            let (name, value) = layout::seal_index(&vault, &index)?;
            writes.push((name, Some(value)));
            Ok(writes)
        });
        match sealed {
            Ok(writes) => self.idb.commit(writes, false),
            Err(e) => Box::pin(std::future::ready(Err(e))),
        }
    }

    fn get(
        &self,
        key: &RecordKey,
    ) -> impl Future<Output = Result<Option<RecordBytes>, StoreError>> + 'static {
        let opened = self.names().map(|(vault, names)| {
            let stored = key.stored(|part| names.keyed(part));
            let index = self.index.borrow().entry(key);
            (self.idb.get(&stored), vault, names, stored, key.clone(), index)
        });
        async move {
            let (reading, vault, names, stored, key, index) = opened?;
            let Some(sealed) = reading.await? else {
                index.check_absent(&key)?;
                return Ok(None);
            };
            let opened = layout::open(&vault, &names, &stored, &sealed)?;
            if opened.key != key {
                return Err(StoreError::Damaged(format!("{stored}: holds another record")));
            }
            index.check(&key, opened.epoch)?;
            Ok(Some(opened.body))
        }
    }

    fn range(
        &self,
        range: RecordRange,
        order: Order,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Vec<(RecordKey, RecordBytes)>, StoreError>> + 'static {
        let opened = self.names().map(|(vault, names)| {
            let bounds = range.stored_bounds(|part| names.keyed(part));
            let index = self.index.borrow().part(&range);
            (self.idb.range(bounds, order, limit), vault, names, index)
        });
        async move {
            let (reading, vault, names, index) = opened?;
            let mut found = Vec::new();
            for (stored, sealed) in reading.await? {
                let opened = layout::open(&vault, &names, &stored, &sealed)?;
                index.check(&opened.key, opened.epoch)?;
                found.push((opened.key, opened.body));
            }
            // A whole range of a listed kind: every record the index lists must be there.
            let listed = index.records.len();
            if limit.is_none() && found.iter().filter(|(k, _)| layout::is_tracked(k)).count() != listed {
                return Err(StoreError::Damaged("a record the index lists was removed".into()));
            }
            Ok(found)
        }
    }
}
