//! Contact requests: someone who wrote first without one of our invite links (they fetched our
//! prekeys from the relay, which hands them to anyone who knows our address). They are kept
//! apart from contacts until the person accepts them or ignores them; nothing is sent to them
//! meanwhile, not even a receipt, so a stranger cannot learn whether or when we read.

use crate::names::{clean, placeholder};
use serde::{Deserialize, Serialize};
use sotto_shared::Address;
use sotto_shared::frames::IdentityPublic;
use std::collections::HashMap;

/// Requests waiting for an answer; past this, new strangers are dropped unseen.
pub const MAX_REQUESTS: usize = 100;
/// Texts kept from one stranger before they are accepted, and their bytes in all; later ones
/// are dropped.
pub const MAX_REQUEST_TEXTS: usize = 20;
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// Strangers ignored and remembered (their later messages are dropped); past this, the oldest
/// ignored one is forgotten and may ask again.
pub const MAX_IGNORED: usize = 1_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub address: Address,
    pub identity: IdentityPublic,
    /// The name they gave, made safe to show (see `names::clean`).
    pub name: String,
    pub at_ms: u64,
    /// The person ignored them: their messages were deleted and later ones are dropped.
    pub ignored: bool,
}

#[derive(Default)]
pub struct Requests {
    by_address: HashMap<Address, Request>,
}

impl Requests {
    pub fn get(&self, address: &Address) -> Option<&Request> {
        self.by_address.get(address)
    }

    /// Waiting for an answer (not ignored).
    pub fn pending(&self) -> impl Iterator<Item = &Request> {
        self.by_address.values().filter(|r| !r.ignored)
    }

    pub fn is_pending(&self, address: &Address) -> bool {
        self.get(address).is_some_and(|r| !r.ignored)
    }

    pub fn is_ignored(&self, address: &Address) -> bool {
        self.get(address).is_some_and(|r| r.ignored)
    }

    pub fn restore(&mut self, request: Request) {
        self.by_address.insert(request.address, request);
    }

    /// A stranger wrote: their request, new or renamed; `None` when too many are waiting (the
    /// message is then dropped) or they were ignored.
    pub fn upsert(
        &mut self,
        address: Address,
        identity: IdentityPublic,
        name: Option<&str>,
        now_ms: u64,
    ) -> Option<&Request> {
        let full = self.pending().count() >= MAX_REQUESTS;
        match self.by_address.get_mut(&address) {
            Some(r) if r.ignored => return None,
            // A changed key is another device or someone else: the request shows the latest.
            Some(r) => {
                r.identity = identity;
                if let Some(name) = name {
                    r.name = clean(name);
                }
            }
            None if full => return None,
            None => {
                let name = name.map_or_else(|| placeholder(&address), clean);
                self.by_address
                    .insert(address, Request { address, identity, name, at_ms: now_ms, ignored: false });
            }
        }
        self.by_address.get(&address)
    }

    /// The request leaves (accepted): returns it.
    pub fn remove(&mut self, address: &Address) -> Option<Request> {
        self.by_address.remove(address)
    }

    /// Marks a request ignored; returns it, and an ignored one forgotten to stay within
    /// [`MAX_IGNORED`] (its record is to be deleted).
    pub fn ignore(&mut self, address: &Address) -> Option<(Request, Option<Address>)> {
        let r = self.by_address.get_mut(address)?;
        r.ignored = true;
        let r = r.clone();
        let ignored: Vec<&Request> = self.by_address.values().filter(|r| r.ignored).collect();
        let forgotten = (ignored.len() > MAX_IGNORED)
            .then(|| {
                ignored.iter().filter(|o| o.address != r.address).min_by_key(|o| o.at_ms).map(|o| o.address)
            })
            .flatten();
        if let Some(a) = forgotten {
            self.by_address.remove(&a);
        }
        Some((r, forgotten))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(byte: u8) -> IdentityPublic {
        IdentityPublic {
            signing_key: [byte; 32],
            dh_key: [byte; 32],
            dh_signature: sotto_shared::frames::Signature([byte; 64]),
        }
    }

    #[test]
    fn requests_are_bounded_and_ignored_ones_stay_ignored() {
        let mut requests = Requests::default();
        for i in 0..MAX_REQUESTS {
            let a = Address([i as u8; 32]);
            assert!(requests.upsert(a, identity(1), Some("\u{202E}Eve"), 0).is_some());
        }
        assert_eq!(requests.get(&Address([0; 32])).unwrap().name, "Eve", "names are made safe");
        assert!(requests.upsert(Address([200; 32]), identity(1), None, 0).is_none(), "too many waiting");
        let (r, forgotten) = requests.ignore(&Address([0; 32])).unwrap();
        assert!(r.ignored && forgotten.is_none());
        assert!(requests.upsert(Address([0; 32]), identity(1), Some("Eve"), 1).is_none(), "still ignored");
        let unknown = requests.upsert(Address([200; 32]), identity(1), None, 0).unwrap();
        assert!(unknown.name.starts_with("Unknown c8c8c8c8"), "room again: {}", unknown.name);
    }
}
