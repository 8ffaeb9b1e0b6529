//! One component per screen. Each takes what it shows as props and reports what the person
//! does through `on_action`; `app` decides which one shows and feeds it.

mod chat;
mod invite;
mod locked;
mod safety;
mod settings;
mod shell;
mod start;
mod welcome;

pub use chat::ChatPage;
pub use invite::{InvitePage, NewInvitePage};
pub use locked::LockedPage;
pub use safety::SafetyPage;
pub use settings::SettingsPage;
pub use shell::{Placeholder, Shell};
pub use start::{FatalPage, OtherTabPage, StartingPage};
pub use welcome::WelcomePage;
