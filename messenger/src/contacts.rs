//! The people we talk to: their identity, name, verification and any warning about them.

use crate::profile::MAX_DISPLAY_NAME_CHARS;
use serde::{Deserialize, Serialize};
use sotto_shared::Address;
use sotto_shared::frames::IdentityPublic;
use std::collections::BTreeMap;

/// Why a contact deserves a second look (shown as a banner in the chat).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContactNotice {
    /// The same address presented a different identity key.
    Changed,
    /// A contact with the same name already exists under another key (they may have started
    /// over on a new device, or someone is impersonating them).
    SameNameAs(Address),
    /// The invite link we accepted had already been used: they cannot read this chat.
    InviteUsed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub address: Address,
    pub identity: IdentityPublic,
    pub name: String,
    pub verified: bool,
    pub notice: Option<ContactNotice>,
    pub added_at_ms: u64,
}

#[derive(Default)]
pub struct Contacts {
    by_address: BTreeMap<Address, Contact>,
}

impl Contacts {
    pub fn get(&self, address: &Address) -> Option<&Contact> {
        self.by_address.get(address)
    }

    pub fn contains(&self, address: &Address) -> bool {
        self.by_address.contains_key(address)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Contact> {
        self.by_address.values()
    }

    /// A contact as restored from storage.
    pub fn restore(&mut self, contact: Contact) {
        self.by_address.insert(contact.address, contact);
    }

    /// Adds or updates a contact; returns it and whether it is new. A changed identity key
    /// loses verification and is flagged; a new contact whose name another already has is
    /// flagged too.
    pub fn upsert(
        &mut self,
        address: Address,
        identity: IdentityPublic,
        name: &str,
        now_ms: u64,
    ) -> (&Contact, bool) {
        // Control characters are dropped.
        let name: String = name.chars().filter(|c| !c.is_control()).take(MAX_DISPLAY_NAME_CHARS).collect();
        let (contact, added) = match self.by_address.get(&address) {
            Some(c) => {
                let mut c = c.clone();
                if c.identity != identity {
                    c.identity = identity;
                    c.verified = false;
                    c.notice = Some(ContactNotice::Changed);
                }
                c.name = name;
                (c, false)
            }
            None => {
                let same_name = self
                    .by_address
                    .values()
                    .find(|c| same_name(&c.name, &name))
                    .map(|c| ContactNotice::SameNameAs(c.address));
                (
                    Contact {
                        address,
                        identity,
                        name,
                        verified: false,
                        notice: same_name,
                        added_at_ms: now_ms,
                    },
                    true,
                )
            }
        };
        self.by_address.insert(address, contact);
        (&self.by_address[&address], added)
    }

    /// Changes a contact in place; returns it for writing, or `None` if unknown.
    pub fn update(&mut self, address: &Address, change: impl FnOnce(&mut Contact)) -> Option<&Contact> {
        let c = self.by_address.get_mut(address)?;
        change(c);
        Some(c)
    }
}

/// Names that read the same: equal ignoring case, with Greek final sigma as sigma (so that
/// "ΟΔΥΣΣΕΥΣ", "οδυσσευς" and "οδυσσευσ" are one name).
fn same_name(a: &str, b: &str) -> bool {
    let folded = |s: &str| {
        s.chars().flat_map(char::to_lowercase).map(|c| if c == 'ς' { 'σ' } else { c }).collect::<Vec<_>>()
    };
    folded(a) == folded(b)
}

#[cfg(test)]
mod tests {
    use super::same_name;

    #[test]
    fn names_that_read_the_same_match() {
        assert!(same_name("Ada", "aDA"));
        assert!(same_name("ΟΔΥΣΣΕΥΣ", "οδυσσευς") && same_name("οδυσσευσ", "ΟΔΥΣΣΕΥΣ"));
        assert!(same_name("Émile", "émile"));
        assert!(!same_name("Ada", "Adam") && !same_name("Bo", "Bö"));
    }
}
