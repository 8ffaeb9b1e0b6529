//! Receipts owed to senders, sent together: a backlog of a hundred messages is answered with
//! one receipt per conversation and kind.

use crate::conversation::ConversationId;
use sotto_engine::message::ReceiptKind;
use std::collections::HashSet;

/// By conversation and kind, in the order first owed (a list: a few conversations at a time,
/// and a map type costs the web app kilobytes of code).
#[derive(Default)]
pub struct Receipts {
    owed: Vec<(Owed, Vec<[u8; 16]>)>,
}

/// A conversation and the kind of receipt owed in it.
type Owed = (ConversationId, ReceiptOwed);

/// Which receipt is owed (ordered, unlike the engine's kind, to key a map).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ReceiptOwed {
    Delivered,
    Read,
}

impl Receipts {
    pub fn is_empty(&self) -> bool {
        self.owed.is_empty()
    }

    /// Owes a receipt for message `id` in `conversation`: "read" if it was read on arrival.
    pub fn owe(&mut self, conversation: ConversationId, read: bool, id: [u8; 16]) {
        let key = (conversation, if read { ReceiptOwed::Read } else { ReceiptOwed::Delivered });
        match self.owed.iter_mut().find(|(k, _)| *k == key) {
            Some((_, ids)) => ids.push(id),
            None => self.owed.push((key, vec![id])),
        }
    }

    /// The messages `ids` are read: a "delivered" still owed for them is no longer needed.
    pub fn superseded_by_read(&mut self, conversation: ConversationId, ids: &HashSet<[u8; 16]>) {
        let key = (conversation, ReceiptOwed::Delivered);
        for (_, owed) in self.owed.iter_mut().filter(|(k, _)| *k == key) {
            owed.retain(|id| !ids.contains(id));
        }
        self.owed.retain(|(_, owed)| !owed.is_empty());
    }

    /// Everything owed, by conversation and kind; nothing is owed afterwards.
    pub fn take(&mut self) -> Vec<(ConversationId, ReceiptKind, Vec<[u8; 16]>)> {
        std::mem::take(&mut self.owed)
            .into_iter()
            .map(|((c, kind), ids)| {
                let kind = match kind {
                    ReceiptOwed::Delivered => ReceiptKind::Delivered,
                    ReceiptOwed::Read => ReceiptKind::Read,
                };
                (c, kind, ids)
            })
            .collect()
    }
}
