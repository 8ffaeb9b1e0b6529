//! What Sotto knows beyond the engine: the profile, contacts, conversations and their history,
//! the outbox and receipts, invite links. Sans-IO like the engine it wraps (no browser or
//! network types), so it is tested natively and shared by the web app, the tests, the load
//! tool and bots.
//!
//! Every call returns [`Effects`]: records to write, frames for the relay and events for the
//! person. Frames are only sent while their line is up (envelopes on the anonymous one, the rest
//! on the logged-in one); anything that must survive a disconnection (a text, a receipt, a
//! profile) goes through the outbox, which is persisted and resent in order whenever the
//! sending line comes up until the relay answers `Sent`.
//!
//! - [`messenger`]: the facade, turning frames and actions into effects
//! - [`connection`]: the relay link as a sans-IO machine (hello, signed login, pings,
//!   staleness, reconnection backoff) that the app, tests and load tool all log in through
//! - [`conversation`]: what a chat is named by; [`contacts`], [`history`], [`outbox`],
//!   [`receipts`], [`invites`], [`profile`]: one concern each, none importing another's facade
//! - [`groups`]: the groups we are in (the engine's group state, topic cursors, posts not yet
//!   confirmed); `group_chat` adds group chats to the facade
//! - [`channels`]: the channels we follow or run (link, keys, checked admin lists, cursor,
//!   newest posts, counts, block); `channel_chat` adds channels to the facade
//! - [`actions`]: replies, edits, deletions, reactions, timers and search on the facade;
//!   [`disappearing`]: timers and countdowns; [`search`]: the sealed search index;
//!   [`typing`]: typing notices, sent and taken live
//! - [`records`]: typed record names and versioned bodies; [`effects`], [`error`]

#![forbid(unsafe_code)]

pub mod actions;
mod channel_chat;
pub mod channels;
pub mod connection;
pub mod contacts;
pub mod conversation;
pub mod disappearing;
pub mod doors;
pub mod driver;
pub mod effects;
pub mod error;
mod group_chat;
mod group_links;
pub mod groups;
pub mod history;
pub mod invites;
mod joining;
pub mod messenger;
pub mod names;
pub mod outbox;
pub mod profile;
pub mod receipts;
pub mod records;
pub mod requests;
pub mod search;
pub mod store;
pub mod typing;

pub use connection::{Connection, Link, Received, Tick};
pub use contacts::{Contact, ContactNotice};
pub use conversation::ConversationId;
pub use driver::{Commit, Driver, Line, Page, Step};
pub use effects::{Effects, Event, Notice};
pub use error::MessengerError;
pub use history::{ChatMessage, Status};
pub use invites::InvitePreview;
pub use messenger::{ChatSummary, Messenger};
pub use profile::Profile;
pub use records::{RecordBytes, RecordKey, RecordWrite, RecordWrites};
pub use store::{MemoryStore, Order, RecordRange, RecordStore, StoreError};
