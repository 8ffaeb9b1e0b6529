//! Group invite links as the messenger keeps them: the text of a link (`#/join/<payload>`, the
//! secret in the URL fragment), the admin's side of one (a [`Door`]: its bounds and who waits
//! to be let in), and the asker's side (an [`Asked`] request, kept until we are welcomed).

use crate::error::MessengerError;
use base64ct::{Base64UrlUnpadded, Encoding};
use serde::{Deserialize, Serialize};
use sotto_engine::EngineError;
use sotto_engine::consts::ENVELOPE_TTL_SECS;
use sotto_engine::group_link::{DoorSecret, GroupLink, JoinRequest};
use sotto_shared::{ClientFrame, MessageId, TopicId, WriteKey};

/// The fragment prefix that marks a group invite link.
pub const GROUP_LINK_PATH: &str = "#/join/";
const LINK_FORMAT: u8 = 1;
/// Longest payload read (a real one is about 150 characters).
const MAX_LINK_CHARS: usize = 1024;
/// A join request is good this long after it was made: an old one posted again (by the relay,
/// or anyone holding the link) does not bring back someone removed since.
pub const REQUEST_LIFETIME_MS: u64 = 2 * 24 * 3600 * 1000;
/// Links one group keeps at once (each is a topic its admin reads).
pub const MAX_DOORS: usize = 8;
/// Requests waiting for approval at one link; past it new ones are ignored (never the oldest
/// pushed out by fresh identities).
const MAX_WAITING: usize = 100;
/// People let in at once by one link in an hour; past it, requests wait for approval (a link
/// holder making identities cannot move the group to a new epoch at will).
pub const MAX_ADMITS_PER_HOUR: usize = 20;
const HOUR_MS: u64 = 3600 * 1000;

/// What the link text carries besides the link itself.
#[derive(Serialize, Deserialize)]
struct LinkText {
    link: GroupLink,
    /// The relay whose topics the door is on.
    relay: String,
    /// Unix milliseconds after which the admin lets nobody in by it (shown before asking).
    expires_at_ms: Option<u64>,
}

/// A group link as read from its text.
#[derive(Clone, Debug)]
pub struct LinkPreview {
    pub link: GroupLink,
    pub relay: String,
    pub expires_at_ms: Option<u64>,
}

/// The link's payload (after [`GROUP_LINK_PATH`]).
fn encode(link: &GroupLink, relay: &str, expires_at_ms: Option<u64>) -> String {
    let text = LinkText { link: link.clone(), relay: relay.into(), expires_at_ms };
    let bytes = postcard::to_extend(&text, vec![LINK_FORMAT]).unwrap_or_default();
    Base64UrlUnpadded::encode_string(&bytes)
}

/// Reads a link's payload, checking it is for `relay_origin` and not expired.
pub fn decode(payload: &str, relay_origin: &str, now_ms: u64) -> Result<LinkPreview, MessengerError> {
    if payload.len() > MAX_LINK_CHARS {
        return Err(MessengerError::BadGroupLink);
    }
    let bytes = Base64UrlUnpadded::decode_vec(payload).map_err(|_| MessengerError::BadGroupLink)?;
    let (format, body) = bytes.split_first().ok_or(MessengerError::BadGroupLink)?;
    if *format != LINK_FORMAT {
        return Err(MessengerError::BadGroupLink);
    }
    let text: LinkText = postcard::from_bytes(body).map_err(|_| MessengerError::BadGroupLink)?;
    if text.relay.trim_end_matches('/') != relay_origin.trim_end_matches('/') {
        return Err(MessengerError::OtherRelay(text.relay));
    }
    if text.expires_at_ms.is_some_and(|at| at <= now_ms) {
        return Err(MessengerError::GroupLinkClosed);
    }
    let mut link = text.link.clone();
    link.name = crate::names::clean(&link.name);
    Ok(LinkPreview { link, relay: text.relay.clone(), expires_at_ms: text.expires_at_ms })
}

/// How an admin wants a link to behave.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoorRules {
    /// Unix milliseconds after which nobody is let in.
    pub expires_at_ms: Option<u64>,
    /// How many may join by it.
    pub max_uses: Option<u32>,
    /// Each request waits for an admin to approve it.
    pub approval: bool,
}

/// A link of ours into a group we administer: its door is a topic we read.
#[derive(Clone, Serialize, Deserialize)]
pub struct Door {
    pub link: GroupLink,
    secret: DoorSecret,
    /// The door's topic and write key, derived from the link once (every post read is matched
    /// against them).
    topic: TopicId,
    write: WriteKey,
    relay: String,
    pub rules: DoorRules,
    /// How many joined by it.
    pub uses: u32,
    /// Requests waiting for approval, oldest first.
    pub waiting: Vec<JoinRequest>,
    /// Requests already answered, by who asked and when (until they are too old to count), so
    /// one posted again is not answered twice.
    answered: Vec<([u8; 32], u64)>,
    /// When people were let in at once in the last hour.
    admitted: Vec<u64>,
}

/// What a request at a door comes to.
#[derive(Debug, PartialEq, Eq)]
pub enum Knock {
    /// Let them in now.
    Admit,
    /// Kept for an admin to approve.
    Wait,
    /// Nothing to do (closed link, too old, answered already, waiting already).
    Ignore,
}

impl Door {
    pub fn new(
        link: GroupLink,
        secret: DoorSecret,
        relay: &str,
        rules: DoorRules,
    ) -> Result<Door, EngineError> {
        let (topic, write) = link.door()?;
        Ok(Door {
            link,
            secret,
            topic,
            write,
            relay: relay.into(),
            rules,
            uses: 0,
            waiting: Vec::new(),
            answered: Vec::new(),
            admitted: Vec::new(),
        })
    }

    /// The topic requests are posted to, and its write key.
    pub fn topic(&self) -> (TopicId, WriteKey) {
        (self.topic, self.write)
    }

    /// Opens a post read at the door.
    pub fn open(&self, payload: &[u8]) -> Result<JoinRequest, EngineError> {
        self.link.open_request(&self.secret, payload)
    }

    /// The link's payload, to share.
    pub fn text(&self) -> String {
        encode(&self.link, &self.relay, self.rules.expires_at_ms)
    }

    /// Whether it still lets anyone in.
    pub fn is_open(&self, now_ms: u64) -> bool {
        self.rules.expires_at_ms.is_none_or(|at| now_ms < at)
            && self.rules.max_uses.is_none_or(|m| self.uses < m)
    }

    /// A request read at the door, at `now_ms` by our clock.
    pub fn knock(&mut self, request: JoinRequest, now_ms: u64) -> Knock {
        let key = request.identity.signing_key;
        let fresh = now_ms.saturating_sub(request.at_ms) < REQUEST_LIFETIME_MS
            && request.at_ms < now_ms.saturating_add(REQUEST_LIFETIME_MS);
        self.answered.retain(|(_, at)| now_ms.saturating_sub(*at) < REQUEST_LIFETIME_MS);
        let seen = self.answered.contains(&(key, request.at_ms))
            || self.waiting.iter().any(|w| w.identity.signing_key == key);
        if !fresh || seen || !self.is_open(now_ms) {
            return Knock::Ignore;
        }
        self.admitted.retain(|at| now_ms.saturating_sub(*at) < HOUR_MS);
        if self.rules.approval || self.admitted.len() >= MAX_ADMITS_PER_HOUR {
            if self.waiting.len() >= MAX_WAITING {
                return Knock::Ignore;
            }
            self.waiting.push(request);
            return Knock::Wait;
        }
        self.answered.push((key, request.at_ms));
        self.admitted.push(now_ms);
        self.uses += 1;
        Knock::Admit
    }

    /// Takes a waiting request out, to let them in (`admit`, counting a use) or turn them away.
    pub fn answer(&mut self, member: &[u8; 32], admit: bool) -> Option<JoinRequest> {
        let i = self.waiting.iter().position(|w| w.identity.signing_key == *member)?;
        let request = self.waiting.remove(i);
        self.answered.push((*member, request.at_ms));
        if admit {
            self.uses += 1;
        }
        Some(request)
    }
}

/// A request of ours to join a group by its link, kept until we are welcomed (or the link turns
/// out closed).
#[derive(Clone, Serialize, Deserialize)]
pub struct Asked {
    pub link: GroupLink,
    pub at_ms: u64,
    /// The post that asks, until the relay confirms it.
    pub post: Option<(MessageId, Vec<u8>)>,
    /// We opened the door's topic ourselves (the relay did not know it yet): we read it until
    /// our post is in, then let go.
    pub opened: bool,
}

impl Asked {
    /// The frame that posts the request, while the relay has not confirmed it.
    pub fn frame(&self) -> Option<ClientFrame> {
        let (id, payload) = self.post.as_ref()?;
        let (topic, write) = self.link.door().ok()?;
        Some(ClientFrame::Post {
            id: *id,
            topic,
            write,
            ttl_secs: ENVELOPE_TTL_SECS,
            payload: payload.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_engine::Identity;
    use sotto_engine::random::OsEntropy;
    use sotto_engine::sender_keys::GroupId;

    fn request(who: &Identity, at_ms: u64, door: &Door) -> JoinRequest {
        door.open(&door.link.request(who, "Bo", at_ms, &mut OsEntropy).unwrap()).unwrap()
    }

    fn door(rules: DoorRules) -> Door {
        let (link, secret) = GroupLink::new(GroupId([1; 16]), "Club", [9; 32], &mut OsEntropy).unwrap();
        Door::new(link, secret, "http://r", rules).unwrap()
    }

    #[test]
    fn links_read_back_and_refuse_other_relays_expiry_and_garbage() {
        let door = door(DoorRules { expires_at_ms: Some(100), ..DoorRules::default() });
        let read = decode(&door.text(), "http://r/", 50).unwrap();
        assert!(read.link == door.link);
        assert_eq!(
            decode(&door.text(), "http://other", 50).unwrap_err(),
            MessengerError::OtherRelay("http://r".into())
        );
        assert_eq!(decode(&door.text(), "http://r", 100).unwrap_err(), MessengerError::GroupLinkClosed);
        for bad in ["", "!!", "AAAA", &"A".repeat(2000)] {
            assert_eq!(decode(bad, "http://r", 0).unwrap_err(), MessengerError::BadGroupLink, "{bad}");
        }
    }

    #[test]
    fn a_door_admits_within_its_rules_and_once_per_request() {
        let (bo, cy, dee) =
            (Identity::generate().unwrap(), Identity::generate().unwrap(), Identity::generate().unwrap());
        let now = REQUEST_LIFETIME_MS * 10;
        let mut one_use = door(DoorRules { max_uses: Some(1), ..DoorRules::default() });
        let asked = request(&bo, now - 5, &one_use);
        assert_eq!(one_use.knock(asked.clone(), now), Knock::Admit);
        assert_eq!(one_use.uses, 1);
        assert_eq!(one_use.knock(asked, now), Knock::Ignore, "answered already");
        let cy_asks = request(&cy, now, &one_use);
        assert_eq!(one_use.knock(cy_asks, now), Knock::Ignore, "no uses left");
        // Too old a request is refused, even at an open door.
        let mut open = door(DoorRules::default());
        let old = request(&dee, now - REQUEST_LIFETIME_MS, &open);
        assert_eq!(open.knock(old, now), Knock::Ignore);
        // With approval, a request waits until answered.
        let mut approving = door(DoorRules { approval: true, ..DoorRules::default() });
        let (first, again) = (request(&dee, now, &approving), request(&dee, now + 1, &approving));
        assert_eq!(approving.knock(first, now), Knock::Wait);
        assert_eq!(approving.knock(again, now), Knock::Ignore, "waiting already");
        assert!(approving.answer(&dee.public().signing_key, true).is_some());
        assert!(approving.waiting.is_empty());
        assert_eq!(approving.uses, 1);
    }

    /// Identities are free to make: past a few an hour, a link lets nobody in by itself, and
    /// those who wait never push out those who waited first.
    #[test]
    fn a_flood_of_requests_waits_for_approval_and_never_pushes_anyone_out() {
        let mut open = door(DoorRules::default());
        let now = REQUEST_LIFETIME_MS;
        let knocks: Vec<Knock> = (0..MAX_ADMITS_PER_HOUR + MAX_WAITING + 5)
            .map(|_| {
                let asked = request(&Identity::generate().unwrap(), now, &open);
                open.knock(asked, now)
            })
            .collect();
        assert!(knocks[..MAX_ADMITS_PER_HOUR].iter().all(|k| *k == Knock::Admit));
        assert!(knocks[MAX_ADMITS_PER_HOUR..][..MAX_WAITING].iter().all(|k| *k == Knock::Wait));
        assert!(knocks[MAX_ADMITS_PER_HOUR + MAX_WAITING..].iter().all(|k| *k == Knock::Ignore));
        assert_eq!(open.waiting.len(), MAX_WAITING);
        // An hour later, the link lets people in by itself again.
        let later = request(&Identity::generate().unwrap(), now + HOUR_MS, &open);
        assert_eq!(open.knock(later, now + HOUR_MS), Knock::Admit);
    }
}
