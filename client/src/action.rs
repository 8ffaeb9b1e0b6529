//! What a page asks of the app. Pages take their data as props and report the person's intent
//! through one `Callback<Action>`; only `app` turns actions into work, so no page imports it.

use sotto_engine::sender_keys::GroupId;
use sotto_messenger::doors::DoorRules;
use sotto_messenger::{ConversationId, InvitePreview};
use sotto_shared::Address;
use sotto_shared::channel::ChannelId;

pub enum Action {
    /// Take over from another tab.
    UseHere,
    Create {
        name: String,
        passphrase: Option<String>,
    },
    Unlock(String),
    Import(web_sys::File, String),
    SendText(ConversationId, String),
    /// Sends these files (picked, dropped or pasted) to a chat, each as its own message.
    Attach(ConversationId, Vec<web_sys::File>),
    /// Opens the file of the open chat's message with this id: downloads it if need be, then
    /// shows a photo whole, plays media inline, saves any other file.
    OpenFile([u8; 16]),
    /// Saves an opened file to disk.
    SaveFile([u8; 16]),
    CloseViewer,
    /// Stops sending or opening a file.
    CancelTransfer(u32),
    /// Turns the microphone on to record a voice message for a chat.
    Record(ConversationId),
    /// Stops recording: sends it (`true`) or drops it.
    StopRecording(bool),
    /// The composer's unsent text for a chat (kept in memory, rendering nothing).
    Draft(ConversationId, String),
    ShowEarlier,
    MakeInvite,
    Accept(Box<InvitePreview>),
    /// Answers a stranger's contact request.
    AcceptRequest(Address),
    IgnoreRequest(Address),
    SetVerified(Address, bool),
    /// Makes a group and adds these contacts to it.
    CreateGroup {
        name: String,
        description: String,
        members: Vec<Address>,
    },
    DescribeGroup(GroupId, String),
    AddToGroup(GroupId, Address),
    /// Removes the member with this identity key.
    RemoveFromGroup(GroupId, [u8; 32]),
    LeaveGroup(GroupId),
    RenameGroup(GroupId, String),
    MuteGroup(GroupId, bool),
    /// Makes the member with this identity key an admin (`true`) or a member again.
    SetAdmin(GroupId, [u8; 32], bool),
    OpenGroupLink(GroupId, DoorRules),
    /// Closes the link with this payload.
    CloseGroupLink(GroupId, String),
    /// Lets in (`true`) or turns away someone waiting at a link, by identity key.
    AnswerJoin(GroupId, [u8; 32], bool),
    /// Asks to join by the group link with this payload.
    AskToJoin(String),
    SetNotifications {
        on: bool,
        previews: bool,
    },
    AskNotifications,
    SetPassphrase(Option<String>),
    /// Downloads a backup under a passphrase of the person's, or (`None`) a generated code.
    Export(Option<String>),
    CreateChannel {
        name: String,
        description: String,
    },
    /// Follows the channel link with this payload.
    FollowChannel(String),
    /// Reports a channel's post (by id) to the relay's operator, with a reason.
    Report(ChannelId, [u8; 16], String),
    MuteChannel(ChannelId, bool),
    /// Makes a contact an admin of a channel we own, or (`Remove`) stops them.
    AddChannelAdmin(ChannelId, Address),
    RemoveChannelAdmin(ChannelId, Address),
    LeaveChannel(ChannelId),
    /// Makes a new link for a channel we own (the old one reads nothing posted after).
    NewChannelLink(ChannelId),
    Reconnect,
    /// Something to tell the person (`None` dismisses).
    Toast(Option<String>),
    /// Something done to one message of a chat.
    Message(ConversationId, MessageAction),
    /// Sets a chat's disappearing-message timer (seconds; `None`: off).
    SetTimer(ConversationId, Option<u32>),
    /// The words in the search box.
    Search(String),
    /// Opens a chat at a message search found (by its local sequence number).
    OpenFound(ConversationId, u64),
    /// Saves a chat as a readable text file.
    ExportChat(ConversationId),
    /// Forwards the message chosen with `MessageAction::Forward` to a chat (`None` cancels).
    ForwardTo(Option<ConversationId>),
    /// Lets a chat be written in again after a warning about the contact's key.
    AcceptKey(Address),
    /// Opens the camera to scan a contact's safety-number code (`None` stops).
    Scan(Option<Address>),
}

/// What the person does to one message, by its id (or local sequence number).
pub enum MessageAction {
    /// Answers it: the composer says so and its next text is the reply.
    Reply([u8; 16]),
    /// Changes its words: the composer takes them.
    Edit([u8; 16]),
    /// Leaves replying or editing.
    StopComposing,
    Forward([u8; 16]),
    DeleteForMe(u64),
    DeleteForEveryone([u8; 16]),
    React([u8; 16], Option<String>),
    /// Scrolls to it (a reply's quote was tapped).
    Show(u64),
}
