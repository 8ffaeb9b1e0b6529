//! Search through our own history, across conversations. The index is a compact copy of every
//! chat message's words (and a file's name), kept in parts of at most [`PART_ENTRIES`]
//! messages, each a record sealed at rest like every other. It is read whole at start (one
//! range read instead of every message's record) and searched in memory: each word of the
//! query must appear in a message, case folded, anywhere in it (so a word's start, middle or
//! end finds it as one types).
//!
//! A message leaves the index when it is deleted or disappears, so its words do not outlive
//! it there either.

use crate::conversation::ConversationId;
use crate::history::ChatMessage;
use crate::records::{RecordKey, RecordWrite, RecordWrites, encode};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Messages per index part: a new message rewrites one part, so parts stay small; reading
/// them all at start costs one record per this many messages.
pub const PART_ENTRIES: usize = 256;

/// Most results a search returns (newest first).
pub const MAX_RESULTS: usize = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub conversation: ConversationId,
    /// The message's local sequence number (its record's).
    pub seq: u64,
    pub sent_at_ms: u64,
    /// Its words (as last edited) and its file's name.
    pub text: String,
}

#[derive(Default, Serialize, Deserialize)]
struct Part {
    entries: Vec<Entry>,
    /// Each entry's text, case folded (built in memory, not stored).
    #[serde(skip)]
    folded: Vec<String>,
}

impl Part {
    fn fold(&mut self) {
        self.folded = self.entries.iter().map(|e| fold(&e.text)).collect();
    }

    fn write(&self, number: u32) -> RecordWrite {
        let key = RecordKey::Search(number);
        if self.entries.is_empty() { (key, None) } else { (key, Some(encode(self))) }
    }
}

fn fold(text: &str) -> String {
    text.to_lowercase()
}

#[derive(Default)]
pub struct SearchIndex {
    parts: BTreeMap<u32, Part>,
    /// Which part holds each message.
    by_message: HashMap<(ConversationId, u64), u32>,
}

impl SearchIndex {
    /// A part as read from storage.
    pub fn restore(
        &mut self,
        number: u32,
        key: &RecordKey,
        bytes: &[u8],
    ) -> Result<(), crate::MessengerError> {
        let Part { entries, .. } = crate::records::decode(key, bytes)?;
        for e in &entries {
            self.by_message.insert((e.conversation, e.seq), number);
        }
        let mut part = Part { entries, folded: Vec::new() };
        part.fold();
        self.parts.insert(number, part);
        Ok(())
    }

    pub fn has_part(&self, number: u32) -> bool {
        self.parts.contains_key(&number)
    }

    pub fn len(&self) -> usize {
        self.by_message.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_message.is_empty()
    }

    /// What a message puts in the index; `None` for one with nothing to find.
    fn entry_of(m: &ChatMessage) -> Option<Entry> {
        if m.notice.is_some() || m.deleted {
            return None;
        }
        let name = m.attachment.as_ref().map(|a| a.name.as_str()).unwrap_or_default();
        let text = match (m.text.trim(), name) {
            ("", "") => return None,
            (t, "") => t.to_owned(),
            ("", n) => n.to_owned(),
            (t, n) => format!("{t}\n{n}"),
        };
        Some(Entry { conversation: m.conversation, seq: m.seq, sent_at_ms: m.sent_at_ms, text })
    }

    /// Indexes a new message (or its new words); returns the part's record.
    pub fn add(&mut self, m: &ChatMessage) -> Option<RecordWrite> {
        let entry = Self::entry_of(m)?;
        let key = (m.conversation, m.seq);
        if let Some(&number) = self.by_message.get(&key) {
            let part = self.parts.get_mut(&number)?;
            let at = part.entries.iter().position(|e| (e.conversation, e.seq) == key)?;
            part.folded[at] = fold(&entry.text);
            part.entries[at] = entry;
            return Some(part.write(number));
        }
        let number = match self.parts.last_key_value() {
            Some((&n, part)) if part.entries.len() < PART_ENTRIES => n,
            Some((&n, _)) => n + 1,
            None => 0,
        };
        let part = self.parts.entry(number).or_default();
        part.folded.push(fold(&entry.text));
        part.entries.push(entry);
        self.by_message.insert(key, number);
        Some(part.write(number))
    }

    /// Takes messages out of the index (deleted, disappeared); returns the parts' records.
    pub fn remove(&mut self, messages: &[(ConversationId, u64)]) -> RecordWrites {
        let mut touched = std::collections::BTreeSet::new();
        for key in messages {
            let Some(number) = self.by_message.remove(key) else { continue };
            let Some(part) = self.parts.get_mut(&number) else { continue };
            if let Some(at) = part.entries.iter().position(|e| (e.conversation, e.seq) == *key) {
                part.entries.remove(at);
                part.folded.remove(at);
                touched.insert(number);
            }
        }
        touched.into_iter().filter_map(|n| self.write_part(n)).collect()
    }

    /// Takes a conversation's messages out (it is gone).
    pub fn forget(&mut self, conversation: &ConversationId) -> RecordWrites {
        let keys: Vec<_> = self.by_message.keys().filter(|(c, _)| c == conversation).copied().collect();
        self.remove(&keys)
    }

    fn write_part(&mut self, number: u32) -> Option<RecordWrite> {
        let write = self.parts.get(&number)?.write(number);
        // An empty part is deleted, unless it is the last (new messages go there).
        if write.1.is_none() && self.parts.last_key_value().map(|(n, _)| *n) != Some(number) {
            self.parts.remove(&number);
        }
        Some(write)
    }

    /// The newest messages holding every word of `query` (at most `limit`), newest first.
    pub fn search(&self, query: &str, limit: usize) -> Vec<&Entry> {
        let words: Vec<String> = fold(query).split_whitespace().map(str::to_owned).collect();
        if words.is_empty() {
            return Vec::new();
        }
        let mut found: Vec<&Entry> = Vec::new();
        for part in self.parts.values().rev() {
            for (entry, folded) in part.entries.iter().zip(&part.folded).rev() {
                if words.iter().all(|w| folded.contains(w.as_str())) {
                    found.push(entry);
                }
            }
        }
        // Parts are in arrival order; the sender's clock orders the results.
        found.sort_by_key(|e| std::cmp::Reverse((e.sent_at_ms, e.seq)));
        found.truncate(limit);
        found
    }
}

/// `n` chat messages of made-up words (4 to 20 each, like a chat's) across 20 conversations,
/// the same every time, one in a thousand naming a lighthouse: a history to measure the index
/// with (benchmarks and load tools).
#[cfg(feature = "load")]
pub fn sample_history(n: usize) -> impl Iterator<Item = ChatMessage> {
    use crate::history::Status;
    const SYLLABLES: [&str; 24] = [
        "ka", "lo", "mi", "ren", "sa", "to", "vi", "nor", "el", "da", "fu", "gan", "hi", "jo", "ke", "lu",
        "ma", "ne", "or", "pa", "qui", "ro", "su", "te",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n as u64).map(move |seq| {
        let words = 4 + next() % 17;
        let mut text = String::new();
        for w in 0..words {
            if w > 0 {
                text.push(' ');
            }
            for _ in 0..2 + next() % 3 {
                text.push_str(SYLLABLES[(next() % 24) as usize]);
            }
        }
        if seq % 1000 == 7 {
            text.push_str(" by the lighthouse");
        }
        let conversation = ConversationId::Direct(sotto_shared::Address([(seq % 20) as u8; 32]));
        let at = 1_800_000_000_000 + seq * 60_000;
        ChatMessage { text, ..ChatMessage::blank(seq, [0; 16], conversation, at, Status::Read, None) }
    })
}

/// The index of [`sample_history`] and its parts as stored (to measure reading them back).
#[cfg(feature = "load")]
pub fn sample_index(n: usize) -> (SearchIndex, Vec<(RecordKey, crate::RecordBytes)>) {
    let mut index = SearchIndex::default();
    let mut parts = BTreeMap::new();
    for m in sample_history(n) {
        if let Some((key, Some(bytes))) = index.add(&m) {
            parts.insert(key, bytes);
        }
    }
    (index, parts.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Status;
    use sotto_shared::Address;

    fn message(c: ConversationId, seq: u64, text: &str) -> ChatMessage {
        ChatMessage { text: text.into(), ..ChatMessage::blank(seq, [0; 16], c, seq, Status::Read, None) }
    }

    #[test]
    fn finds_every_word_anywhere_newest_first_and_forgets_what_is_removed() {
        let (a, b) = (ConversationId::Direct(Address([1; 32])), ConversationId::Direct(Address([2; 32])));
        let mut index = SearchIndex::default();
        let mut stored = BTreeMap::new();
        for seq in 0..(PART_ENTRIES as u64 + 10) {
            let c = if seq % 2 == 0 { a } else { b };
            let text = if seq == 7 { "Meet at the Lighthouse at eight" } else { "nothing here" };
            let (key, bytes) = index.add(&message(c, seq, text)).unwrap();
            stored.insert(key, bytes);
        }
        assert_eq!(stored.len(), 2, "two parts");
        let found = index.search("lightHOUSE eig", 10);
        assert_eq!(found.iter().map(|e| (e.conversation, e.seq)).collect::<Vec<_>>(), vec![(b, 7)]);
        assert!(index.search("lighthouse nine", 10).is_empty(), "every word must match");
        assert_eq!(index.search("nothing", 3).iter().map(|e| e.seq).collect::<Vec<_>>(), vec![265, 264, 263]);

        // Read back from the stored parts, the index finds the same.
        let mut again = SearchIndex::default();
        for (key, bytes) in &stored {
            let RecordKey::Search(n) = key else { unreachable!() };
            again.restore(*n, key, bytes.as_ref().unwrap()).unwrap();
        }
        assert_eq!(again.search("lighthouse", 10).len(), 1);

        // Removed and edited messages: their old words are gone from the stored part.
        let writes = again.remove(&[(b, 7)]);
        let (_, bytes) = &writes[0];
        let bytes = bytes.as_ref().unwrap();
        assert!(!String::from_utf8_lossy(bytes).contains("Lighthouse"));
        assert!(again.search("lighthouse", 10).is_empty());
        again.add(&message(a, 8, "changed words")).unwrap();
        assert_eq!(again.search("changed", 10).len(), 1);
        assert_eq!(again.forget(&a).len(), 2, "both parts held some of a's messages");
        assert!(again.search("changed", 10).is_empty());
        assert_eq!(again.len(), (PART_ENTRIES + 10) / 2 - 1);
    }
}
