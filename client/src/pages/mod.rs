//! One page per screen: a `Props` struct with what it shows (including one
//! `Callback<Action>` for what the person does) and a `view` function of it. Pages never read
//! app state; `app` decides which one shows and fills its props.

pub mod channel;
pub mod chat;
pub mod follow_channel;
pub mod group;
pub mod group_info;
pub mod invite;
pub mod join_group;
pub mod locked;
pub mod new_channel;
pub mod new_group;
pub mod report;
pub mod request;
pub mod safety;
pub mod settings;
pub mod shell;
pub mod start;
pub mod welcome;
