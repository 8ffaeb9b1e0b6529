//! The people we talk to: their identity, name, verification and any warning about them.

use crate::names::{clean, same_name};
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

impl Contact {
    /// Their key changed, or another contact has their name: nothing is sent to them until
    /// the person answers the warning (`Messenger::accept_key`) or verifies them.
    pub fn key_in_doubt(&self) -> bool {
        matches!(self.notice, Some(ContactNotice::Changed | ContactNotice::SameNameAs(_)))
    }
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
        let name = clean(name);
        let (contact, added) = match self.by_address.get(&address) {
            Some(c) => {
                let mut c = c.clone();
                if c.identity != identity {
                    c.identity = identity;
                    c.verified = false;
                    c.notice = Some(ContactNotice::Changed);
                }
                // A rename is checked like a first name: it must not read like another's. The
                // same name again changes nothing (someone else taking it must not flag them),
                // nor does anything flag a contact the person verified.
                if c.name != name && !c.verified {
                    let collides =
                        self.by_address.values().find(|o| o.address != address && same_name(&o.name, &name));
                    match (collides, &c.notice) {
                        (Some(other), None | Some(ContactNotice::SameNameAs(_))) => {
                            c.notice = Some(ContactNotice::SameNameAs(other.address))
                        }
                        (None, Some(ContactNotice::SameNameAs(_))) => c.notice = None,
                        _ => {}
                    }
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
    fn a_rename_that_reads_like_another_contact_is_flagged_and_cleared() {
        let mut contacts = Contacts::default();
        let (ada, eve) = (Address([1; 32]), Address([2; 32]));
        contacts.upsert(ada, identity(1), "Ada", 0);
        let (c, _) = contacts.upsert(eve, identity(2), "Eve", 0);
        assert_eq!(c.notice, None);
        // Eve renames herself to a look-alike of Ada (Cyrillic А, a right-to-left override).
        let (c, added) = contacts.upsert(eve, identity(2), "\u{0410}da\u{202E}", 1);
        assert!(!added);
        assert_eq!((c.name.as_str(), c.notice.clone()), ("\u{0410}da", Some(ContactNotice::SameNameAs(ada))));
        // And back: the warning goes.
        let (c, _) = contacts.upsert(eve, identity(2), "Eve", 2);
        assert_eq!(c.notice, None);
        // Ada keeping her own name is not a collision with herself.
        let (c, _) = contacts.upsert(ada, identity(1), "ADA", 3);
        assert_eq!(c.notice, None);
        // Eve takes Ada's name again; Ada saying hers again must not flag Ada (a flag stops
        // the person writing to her).
        contacts.upsert(eve, identity(2), "Ada", 4);
        let (c, _) = contacts.upsert(ada, identity(1), "ADA", 5);
        assert_eq!(c.notice, None);
    }
}
