//! Disappearing messages: each conversation's timer, and when each read message goes. One
//! record holds both, so a message whose countdown started is deleted on time even if its
//! page of history is not loaded.

use crate::conversation::ConversationId;
use crate::records::{RecordKey, RecordWrite, encode};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A conversation's timer as last set: by whom and when (by their clock), so that two changes
/// that cross end the same on every side (the later wins; at the same time, the greater key).
#[derive(Clone, Copy, Serialize, Deserialize)]
struct Setting {
    secs: Option<u32>,
    at_ms: u64,
    by: [u8; 32],
}

#[derive(Default, Serialize, Deserialize)]
pub struct Disappearing {
    /// Per conversation whose timer was ever set: seconds (one of `DISAPPEARING_TIMERS`), or
    /// off.
    timers: BTreeMap<ConversationId, Setting>,
    /// Messages whose countdown runs: when they go (our clock, ms), conversation, local
    /// sequence number.
    due: BTreeSet<(u64, ConversationId, u64)>,
}

impl Disappearing {
    pub fn timer(&self, conversation: &ConversationId) -> Option<u32> {
        self.timers.get(conversation).and_then(|s| s.secs)
    }

    /// Sets or clears a conversation's timer, as `by` did at `at_ms`, unless a later change
    /// is already in; whether the timer changed.
    pub fn set_timer(
        &mut self,
        conversation: ConversationId,
        secs: Option<u32>,
        at_ms: u64,
        by: [u8; 32],
    ) -> bool {
        let before = self.timers.get(&conversation).copied();
        if before.is_some_and(|b| (b.at_ms, b.by) >= (at_ms, by)) {
            return false;
        }
        self.timers.insert(conversation, Setting { secs, at_ms, by });
        before.and_then(|b| b.secs) != secs
    }

    /// Message `seq` of `conversation` goes at `at_ms`.
    pub fn schedule(&mut self, at_ms: u64, conversation: ConversationId, seq: u64) {
        self.due.insert((at_ms, conversation, seq));
    }

    /// Forgets a message that went another way (deleted by hand); whether it was counting.
    pub fn unschedule(&mut self, conversation: &ConversationId, seq: u64) -> bool {
        let before = self.due.len();
        self.due.retain(|(_, c, s)| !(c == conversation && *s == seq));
        self.due.len() != before
    }

    /// The time to stamp a change of ours with: now, or just after the last change if our
    /// clock is behind its author's (a change stamped earlier would lose on every side).
    pub fn next_stamp(&self, conversation: &ConversationId, now_ms: u64) -> u64 {
        self.timers.get(conversation).map_or(now_ms, |s| now_ms.max(s.at_ms.saturating_add(1)))
    }

    /// Takes the messages due by `now_ms`.
    pub fn take_due(&mut self, now_ms: u64) -> Vec<(ConversationId, u64)> {
        // The least conversation id (the first variant, the least address) starts the rest.
        let least = ConversationId::Direct(sotto_shared::Address([0; 32]));
        let later = self.due.split_off(&(now_ms.saturating_add(1), least, 0));
        std::mem::replace(&mut self.due, later).into_iter().map(|(_, c, s)| (c, s)).collect()
    }

    /// When the next message goes, if any countdown runs.
    pub fn next_due(&self) -> Option<u64> {
        self.due.first().map(|(at, _, _)| *at)
    }

    /// Forgets a conversation that is gone.
    pub fn forget(&mut self, conversation: &ConversationId) {
        self.timers.remove(conversation);
        self.due.retain(|(_, c, _)| c != conversation);
    }

    pub fn write(&self) -> RecordWrite {
        (RecordKey::Disappearing, Some(encode(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_shared::Address;

    #[test]
    fn messages_come_due_in_time_order() {
        let (a, b) = (ConversationId::Direct(Address([1; 32])), ConversationId::Direct(Address([2; 32])));
        let mut d = Disappearing::default();
        assert!(d.set_timer(a, Some(5), 10, [1; 32]));
        assert!(!d.set_timer(a, Some(5), 11, [1; 32]), "no change");
        // Two changes that crossed: the later one wins on both sides, whatever the order.
        let mut other = Disappearing::default();
        assert!(other.set_timer(a, Some(60), 12, [2; 32]));
        assert!(!other.set_timer(a, Some(30), 12, [1; 32]), "same time, smaller key: too late");
        assert!(d.set_timer(a, Some(30), 12, [1; 32]));
        assert!(d.set_timer(a, Some(60), 12, [2; 32]));
        assert_eq!((d.timer(&a), other.timer(&a)), (Some(60), Some(60)));
        assert!(d.set_timer(a, Some(5), 13, [1; 32]));
        d.schedule(2_000, b, 7);
        d.schedule(1_000, a, 3);
        d.schedule(3_000, a, 4);
        assert_eq!(d.next_due(), Some(1_000));
        assert_eq!(d.take_due(999), vec![]);
        assert_eq!(d.take_due(2_000), vec![(a, 3), (b, 7)]);
        d.unschedule(&a, 4);
        assert_eq!(d.next_due(), None);
        assert!(d.set_timer(a, None, 14, [1; 32]));
        assert_eq!(d.timer(&a), None);
        // A clock behind the last change's stamps just after it, so the change still wins.
        assert_eq!((d.next_stamp(&a, 10), d.next_stamp(&a, 20), d.next_stamp(&b, 3)), (15, 20, 3));
    }
}
