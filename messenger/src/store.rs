//! Where records live: a trait with batched writes, keyed gets and ordered range reads, and
//! [`MemoryStore`] for tests, bots and tools. The web app's IndexedDB store implements the same
//! trait, and both pass one conformance suite (`conformance`, feature `conformance`).
//!
//! Names are [`RecordKey`]s; a store writes them as text (`RecordKey`'s `Display`) and orders
//! them as text, so a range of one conversation's messages comes back in sequence order.

pub use crate::error::StoreError;
use crate::records::{RecordBytes, RecordKey, RecordWrites};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

/// A commit in flight: resolves once the changes are durable.
pub type Saving = Pin<Box<dyn Future<Output = Result<(), StoreError>>>>;

/// A run of records, in name order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordRange {
    /// The engine's sessions, one per contact.
    Sessions,
    Contacts,
    Outbox,
    /// Strangers told their invite link was spent.
    Told,
    /// Strangers who wrote without an invite.
    Requests,
    /// The groups we are in.
    Groups,
    /// Parts of welcomes into groups, kept until every part is in.
    Joining,
    /// Our requests to join groups by their links.
    Asked,
    /// The search index's parts.
    Search,
    /// One conversation's messages with local sequence numbers in `from..to`.
    Messages {
        conversation: crate::ConversationId,
        from: u64,
        to: u64,
    },
}

impl RecordRange {
    /// The names it spans as text: `lower..upper`.
    pub fn bounds(&self) -> (String, String) {
        self.bounds_with(|key| key.to_string())
    }

    /// The stored names it spans in a store that keys its names (see `RecordKey::stored`).
    pub fn stored_bounds(&self, keyed: impl Fn(&str) -> String) -> (String, String) {
        self.bounds_with(|key| key.stored(&keyed))
    }

    /// The names it spans, a message's name being `name` of its key.
    fn bounds_with(&self, name: impl Fn(&RecordKey) -> String) -> (String, String) {
        // A kind's names all start with "kind/"; '0' is the character after '/'.
        let kind = |lower: &str, upper: &str| (lower.to_string(), upper.to_string());
        match *self {
            RecordRange::Sessions => kind("session/", "session0"),
            RecordRange::Contacts => kind("contact/", "contact0"),
            RecordRange::Outbox => kind("outbox/", "outbox0"),
            RecordRange::Told => kind("told/", "told0"),
            RecordRange::Requests => kind("request/", "request0"),
            RecordRange::Groups => kind("group/", "group0"),
            RecordRange::Joining => kind("joining/", "joining0"),
            RecordRange::Asked => kind("asked/", "asked0"),
            RecordRange::Search => kind("search/", "search0"),
            RecordRange::Messages { conversation, from, to } => {
                (name(&RecordKey::Message(conversation, from)), name(&RecordKey::Message(conversation, to)))
            }
        }
    }

    /// Parses a name read from this range: anything else there is damage, not a newer
    /// version's record (those have kinds of their own).
    pub fn parse(name: &str) -> Result<RecordKey, StoreError> {
        RecordKey::parse(name)
            .ok_or_else(|| StoreError::Damaged(format!("unreadable record name \"{name}\"")))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Lowest name first.
    Ascending,
    /// Highest name first (the newest messages of a conversation).
    Descending,
}

/// Storage of named records.
pub trait RecordStore {
    /// Writes and deletes `changes` in one transaction. The transaction is ordered at the call,
    /// not when the future is first polled: changes saved later never land before these, and
    /// a later read sees them. The future resolves once they are durable (commit-then-send
    /// waits for it).
    fn save_changes(&self, changes: RecordWrites) -> Saving;

    /// A read starts at the call, not at the first poll: start several, then await them, and
    /// a store that can answers them concurrently. The future owns what it needs.
    fn get(&self, key: &RecordKey)
    -> impl Future<Output = Result<Option<RecordBytes>, StoreError>> + 'static;

    /// The records in `range`, in `order`, at most `limit` of them (started at the call). A
    /// conversation's messages and the outbox come in sequence order; the records of other
    /// kinds in no particular order (a store may key their names).
    fn range(
        &self,
        range: RecordRange,
        order: Order,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Vec<(RecordKey, RecordBytes)>, StoreError>> + 'static;
}

/// Records in memory, shared by its clones (a "reload" opens a clone).
#[derive(Clone, Default)]
pub struct MemoryStore {
    records: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl MemoryStore {
    fn records(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic elsewhere while holding the lock leaves the map whole (each change is one
        // insert or remove), so poisoning is ignored.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every record by its name as text, as a browser's storage would show them.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.records().clone()
    }

    /// Puts a record under any name, as an older or newer version (or damage) would have.
    pub fn put_raw(&self, name: &str, value: Vec<u8>) {
        self.records().insert(name.into(), value);
    }
}

impl RecordStore for MemoryStore {
    fn save_changes(&self, changes: RecordWrites) -> Saving {
        let mut records = self.records();
        for (key, value) in changes {
            match value {
                Some(v) => records.insert(key.to_string(), v.to_vec()),
                None => records.remove(&key.to_string()),
            };
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn get(
        &self,
        key: &RecordKey,
    ) -> impl Future<Output = Result<Option<RecordBytes>, StoreError>> + 'static {
        std::future::ready(Ok(self.records().get(&key.to_string()).map(|v| RecordBytes::new(v.clone()))))
    }

    fn range(
        &self,
        range: RecordRange,
        order: Order,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Vec<(RecordKey, RecordBytes)>, StoreError>> + 'static {
        let (lower, upper) = range.bounds();
        let records = self.records();
        // An empty range (from ≥ to) has nothing in it (`BTreeMap::range` would panic on it).
        let span = records.range(lower.clone()..upper.max(lower));
        let span: Box<dyn Iterator<Item = _>> = match order {
            Order::Ascending => Box::new(span),
            Order::Descending => Box::new(span.rev()),
        };
        let found = span
            .take(limit.unwrap_or(usize::MAX))
            .map(|(name, value)| Ok((RecordRange::parse(name)?, RecordBytes::new(value.clone()))))
            .collect();
        std::future::ready(found)
    }
}

/// The behaviour every [`RecordStore`] must have, run against an empty store (natively on
/// [`MemoryStore`], in headless Chromium on IndexedDB). Panics on the first difference.
#[cfg(feature = "conformance")]
pub mod conformance {
    use super::*;
    use crate::ConversationId;
    use sotto_engine::device::StorageKey;
    use sotto_shared::Address;

    fn message(c: ConversationId, seq: u64) -> RecordKey {
        RecordKey::Message(c, seq)
    }

    fn seqs(records: &[(RecordKey, RecordBytes)]) -> Vec<u64> {
        records
            .iter()
            .map(|(k, _)| match k {
                RecordKey::Message(_, s) | RecordKey::Outbox(s) => *s,
                other => panic!("not a sequenced record: {other}"),
            })
            .collect()
    }

    pub async fn run<S: RecordStore>(store: &S) {
        let (a, b) =
            (ConversationId::Direct(Address([0xaa; 32])), ConversationId::Direct(Address([0xbb; 32])));
        assert_eq!(store.get(&RecordKey::Profile).await, Ok(None), "starts empty");

        // One batch of every kind; values come back byte for byte (empty ones too).
        let mut batch: RecordWrites = vec![
            (RecordKey::Profile, Some(RecordBytes::new(vec![2, 0, 255]))),
            (StorageKey::Identity.into(), Some(RecordBytes::default())),
            (StorageKey::Conversation(Address([1; 32])).into(), Some(RecordBytes::new(vec![1]))),
            (RecordKey::Contact(Address([1; 32])), Some(RecordBytes::new(vec![3]))),
            (RecordKey::Contact(Address([2; 32])), Some(RecordBytes::new(vec![4]))),
            (RecordKey::Outbox(0x10), Some(RecordBytes::new(vec![5]))),
            (RecordKey::Outbox(0x2), Some(RecordBytes::new(vec![6]))),
        ];
        // Sequence numbers chosen so that text order differs from insertion order, and one
        // (0x100) whose decimal form would sort before 0x20.
        for seq in [0x20, 0x3, 0x100, 0x1, 0xff] {
            batch.push((message(a, seq), Some(RecordBytes::new(seq.to_le_bytes().to_vec()))));
        }
        batch.push((message(b, 0x5), Some(RecordBytes::new(vec![7]))));
        store.save_changes(batch).await.expect("saved");

        assert_eq!(store.get(&RecordKey::Profile).await, Ok(Some(RecordBytes::new(vec![2, 0, 255]))));
        assert_eq!(store.get(&StorageKey::Identity.into()).await, Ok(Some(RecordBytes::default())));
        assert_eq!(store.get(&RecordKey::Contact(Address([9; 32]))).await, Ok(None));

        // A kind's records come in no particular order (a store may key their names); a
        // conversation's messages and the outbox come in sequence order.
        let mut contacts = store.range(RecordRange::Contacts, Order::Ascending, None).await.unwrap();
        contacts.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            contacts,
            vec![
                (RecordKey::Contact(Address([1; 32])), RecordBytes::new(vec![3])),
                (RecordKey::Contact(Address([2; 32])), RecordBytes::new(vec![4]))
            ],
            "a kind's range holds that kind only"
        );
        let sessions = store.range(RecordRange::Sessions, Order::Ascending, None).await.unwrap();
        assert_eq!(sessions.len(), 1);
        let outbox = store.range(RecordRange::Outbox, Order::Ascending, None).await.unwrap();
        assert_eq!(seqs(&outbox), [0x2, 0x10], "outbox in queue order");

        let all_of_a = RecordRange::Messages { conversation: a, from: 0, to: u64::MAX };
        let forward = store.range(all_of_a, Order::Ascending, None).await.unwrap();
        assert_eq!(seqs(&forward), [0x1, 0x3, 0x20, 0xff, 0x100], "messages in sequence order");
        assert_eq!(forward[4].1.as_slice(), 0x100u64.to_le_bytes());
        let newest = store.range(all_of_a, Order::Descending, Some(2)).await.unwrap();
        assert_eq!(seqs(&newest), [0x100, 0xff], "a page of the newest, newest first");
        let earlier = RecordRange::Messages { conversation: a, from: 0, to: 0xff };
        let page = store.range(earlier, Order::Descending, Some(2)).await.unwrap();
        assert_eq!(seqs(&page), [0x20, 0x3], "the page before: `to` is excluded");
        let from = RecordRange::Messages { conversation: a, from: 0x3, to: 0x21 };
        assert_eq!(seqs(&store.range(from, Order::Ascending, Some(10)).await.unwrap()), [0x3, 0x20]);
        let of_b = RecordRange::Messages { conversation: b, from: 0, to: u64::MAX };
        assert_eq!(seqs(&store.range(of_b, Order::Descending, None).await.unwrap()), [0x5]);
        assert!(store.range(all_of_a, Order::Ascending, Some(0)).await.unwrap().is_empty());
        for (from, to) in [(0x20, 0x20), (0x100, 0x3)] {
            let none = RecordRange::Messages { conversation: a, from, to };
            assert_eq!(
                store.range(none, Order::Descending, None).await,
                Ok(Vec::new()),
                "{from}..{to} is empty"
            );
        }

        // Deletes and overwrites in one batch; batches apply in the order they were saved,
        // even when the first is still in flight.
        let first = store.save_changes(vec![
            (message(a, 0x1), None),
            (RecordKey::Profile, Some(RecordBytes::new(vec![9]))),
            (RecordKey::Outbox(0x99), None), // deleting what is not there is not an error
        ]);
        let second = store.save_changes(vec![
            (RecordKey::Profile, Some(RecordBytes::new(vec![10]))),
            (RecordKey::Outbox(0x2), None),
        ]);
        second.await.expect("second saved");
        first.await.expect("first saved");
        assert_eq!(
            store.get(&RecordKey::Profile).await,
            Ok(Some(RecordBytes::new(vec![10]))),
            "the later batch wins"
        );
        assert_eq!(seqs(&store.range(all_of_a, Order::Ascending, Some(1)).await.unwrap()), [0x3]);
        assert_eq!(seqs(&store.range(RecordRange::Outbox, Order::Ascending, None).await.unwrap()), [0x10]);

        // A read starts at the call: it sees the store as it was then, even if a save
        // follows before it is awaited.
        let before = store.get(&RecordKey::Profile);
        let page = store.range(RecordRange::Outbox, Order::Ascending, None);
        let saving = store.save_changes(vec![
            (RecordKey::Profile, Some(RecordBytes::new(vec![11]))),
            (RecordKey::Outbox(0x10), None),
        ]);
        assert_eq!(before.await, Ok(Some(RecordBytes::new(vec![10]))), "read at the call");
        assert_eq!(seqs(&page.await.unwrap()), [0x10], "read at the call");
        saving.await.expect("saved");
        assert_eq!(store.get(&RecordKey::Profile).await, Ok(Some(RecordBytes::new(vec![11]))));

        // A read issued right after a save, without awaiting it, sees it.
        let saving =
            store.save_changes(vec![(RecordKey::Contact(Address([3; 32])), Some(RecordBytes::new(vec![8])))]);
        assert_eq!(
            store.get(&RecordKey::Contact(Address([3; 32]))).await,
            Ok(Some(RecordBytes::new(vec![8])))
        );
        saving.await.expect("saved");
    }
}
