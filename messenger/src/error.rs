//! What can go wrong, in words a person can act on.

use sotto_engine::EngineError;
use sotto_engine::consts::MAX_TEXT_BYTES;
use sotto_shared::invite::InviteError;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MessengerError {
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Invite(#[from] InviteError),
    #[error("this invite link is not signed correctly; ask for a new one")]
    ForgedInvite,
    #[error("this is your own invite link: send it to the person you want to talk to")]
    OwnInvite,
    #[error("this invite link is for another relay ({0}): open it there")]
    OtherRelay(String),
    #[error("write something first")]
    EmptyMessage,
    #[error("that message is too long: keep it under {} KiB", MAX_TEXT_BYTES / 1024)]
    TooLong,
    #[error("this contact is not in your chats")]
    UnknownContact,
    #[error("this message request was already answered")]
    NoRequest,
    #[error("accept their request before you write to them")]
    RequestPending,
    #[error("Sotto is making a new secure session with {0} after the restore; try again in a moment")]
    Renewing(String),
    #[error(
        "the invite link you accepted had already been used, so they cannot read this chat: ask them for a new link"
    )]
    InviteUsed,
    #[error("you are not in this group")]
    NotInGroup,
    #[error("only this group's admins may do that (and an admin only to admins who joined after them)")]
    NotGroupAdmin,
    #[error("this group link is incomplete or damaged; ask for a new one")]
    BadGroupLink,
    #[error("this group link was closed or has expired; ask an admin of the group for a new one")]
    GroupLinkClosed,
    #[error("you are already in this group")]
    AlreadyInGroup,
    #[error("this group has as many links as it can have at once: close one first")]
    TooManyLinks,
    #[error("you do not follow this channel")]
    NotInChannel,
    #[error("only this channel's admins may post in it")]
    NotChannelAdmin,
    #[error("a channel has at most 64 admins")]
    TooManyAdmins,
    #[error("this channel link is incomplete or damaged; ask for a new one")]
    BadChannelLink,
    #[error("this channel was blocked by this relay's operator: {0}")]
    ChannelBlocked(String),
    #[error("that post can no longer be reported (only the newest posts you read can)")]
    NoSuchPost,
    #[error("{0}'s key is in doubt: answer the warning in the chat before writing")]
    KeyInDoubt(String),
    #[error("that message is not here any more")]
    NoSuchMessage,
    #[error("only your own texts can be changed, and not once deleted")]
    NotEditable,
    #[error("that message is too old to change for everyone")]
    TooLate,
    #[error("disappearing messages can be set to 5 s, 30 s, 1 min, 1 h, 1 day or 1 week")]
    NoSuchTimer,
    #[error("channel posts cannot be answered, changed or reacted to")]
    NotInChannels,
    #[error("stored data is damaged: {0}")]
    Damaged(String),
    #[error("{0}")]
    Name(#[from] crate::names::NameError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a record store can fail with (see `store`).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    #[error("this browser does not let Sotto store data (private mode or storage disabled)")]
    Unavailable,
    #[error("the browser could not save or read data: {0}")]
    Failed(String),
    #[error("stored data is damaged: {0}")]
    Damaged(String),
    #[error("{0}")]
    Name(#[from] crate::names::NameError),
}
