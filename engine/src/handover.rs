//! What a group admin hands a member over their pairwise session (inside a message body): a
//! welcome into the group, or the next epoch's secret after someone left. See `group.rs` for
//! how they are made and taken.

use crate::roster::Change;
use crate::sender_keys::GroupId;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// What an admin gives a member they add, over their pairwise session: the roster and the
/// epoch that starts with the addition.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Welcome {
    #[zeroize(skip)]
    pub group: GroupId,
    #[zeroize(skip)]
    pub changes: Vec<Change>,
    pub epoch: u32,
    pub secret: [u8; 32],
}

/// What an admin gives each remaining member after a removal or a departure, over their
/// pairwise session: the change and the epoch that starts with it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Rekey {
    #[zeroize(skip)]
    pub group: GroupId,
    #[zeroize(skip)]
    pub change: Change,
    pub epoch: u32,
    pub secret: [u8; 32],
}

impl std::fmt::Debug for Welcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Welcome {{ changes: {}, epoch: {} }}", self.changes.len(), self.epoch)
    }
}

impl std::fmt::Debug for Rekey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rekey {{ epoch: {} }}", self.epoch)
    }
}
