//! The screens, addressed by the URL fragment (never sent to the relay).

use sotto_engine::sender_keys::GroupId;
use sotto_messenger::ConversationId;
use sotto_messenger::channels::CHANNEL_LINK_PATH;
use sotto_messenger::conversation::{group_from_hex, group_hex};
use sotto_messenger::doors::GROUP_LINK_PATH;
use sotto_shared::channel::ChannelId;
use sotto_shared::invite::INVITE_PATH;
use sotto_shared::{Address, MessageId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Chats,
    Chat(ConversationId),
    /// The safety number shared with a contact.
    Safety(Address),
    /// An invite link was opened; the payload is checked when shown.
    Invite(String),
    /// A group invite link was opened.
    JoinGroup(String),
    NewInvite,
    /// Making a group.
    NewGroup,
    /// A group's members and what admins can change.
    GroupInfo(GroupId),
    /// The safety number shared with a group member who is not a contact, by identity key.
    MemberSafety(GroupId, [u8; 32]),
    Settings,
    /// Making a channel.
    NewChannel,
    /// A channel link was opened.
    FollowChannel(String),
    /// Reporting a channel's post (by its id) to the relay's operator.
    Report(ChannelId, [u8; 16]),
}

impl Route {
    pub fn parse(hash: &str) -> Route {
        if let Some(payload) = hash.strip_prefix(INVITE_PATH) {
            return Route::Invite(payload.to_string());
        }
        if let Some(payload) = hash.strip_prefix(GROUP_LINK_PATH) {
            return Route::JoinGroup(payload.to_string());
        }
        if let Some(payload) = hash.strip_prefix(CHANNEL_LINK_PATH) {
            return Route::FollowChannel(payload.to_string());
        }
        let path = hash.trim_start_matches('#').trim_start_matches('/');
        let (head, rest) = path.split_once('/').unwrap_or((path, ""));
        match head {
            "chat" => ConversationId::parse(rest).map_or(Route::Chats, Route::Chat),
            "safety" => Address::from_hex(rest).map_or(Route::Chats, Route::Safety),
            "invite" => Route::Invite(rest.to_string()),
            "new" => Route::NewInvite,
            "new-group" => Route::NewGroup,
            "group" => match rest.split_once("/safety/") {
                Some((g, key)) => group_from_hex(g)
                    .zip(Address::from_hex(key))
                    .map_or(Route::Chats, |(g, key)| Route::MemberSafety(g, key.0)),
                None => group_from_hex(rest).map_or(Route::Chats, Route::GroupInfo),
            },
            "settings" => Route::Settings,
            "new-channel" => Route::NewChannel,
            "report" => rest
                .split_once('/')
                .and_then(|(c, m)| Some((ChannelId::from_hex(c)?, MessageId::from_hex(m)?)))
                .map_or(Route::Chats, |(c, m)| Route::Report(c, m.0)),
            _ => Route::Chats,
        }
    }

    pub fn hash(&self) -> String {
        match self {
            Route::Chats => "#/".into(),
            Route::Chat(c) => format!("#/chat/{c}"),
            Route::Safety(a) => format!("#/safety/{}", a.to_hex()),
            Route::Invite(p) => format!("{INVITE_PATH}{p}"),
            Route::JoinGroup(p) => format!("{GROUP_LINK_PATH}{p}"),
            Route::NewInvite => "#/new".into(),
            Route::NewGroup => "#/new-group".into(),
            Route::GroupInfo(g) => format!("#/group/{}", group_hex(g)),
            Route::MemberSafety(g, key) => {
                format!("#/group/{}/safety/{}", group_hex(g), Address(*key).to_hex())
            }
            Route::Settings => "#/settings".into(),
            Route::NewChannel => "#/new-channel".into(),
            Route::FollowChannel(p) => format!("{CHANNEL_LINK_PATH}{p}"),
            Route::Report(c, m) => format!("#/report/{}/{}", c.to_hex(), MessageId(*m).to_hex()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_round_trip() {
        let a = Address([0xab; 32]);
        for r in [
            Route::Chats,
            Route::Chat(ConversationId::Direct(a)),
            Route::Safety(a),
            Route::Invite("xyz".into()),
            Route::JoinGroup("xyz".into()),
            Route::NewInvite,
            Route::NewGroup,
            Route::GroupInfo(GroupId([0xcd; 16])),
            Route::NewChannel,
            Route::FollowChannel("abc".into()),
            Route::Report(ChannelId([3; 16]), [4; 16]),
            Route::Chat(ConversationId::Channel(ChannelId([5; 16]))),
            Route::MemberSafety(GroupId([0xcd; 16]), [0x12; 32]),
            Route::Chat(ConversationId::Group(GroupId([0xef; 16]))),
            Route::Settings,
        ] {
            assert_eq!(Route::parse(&r.hash()), r);
        }
        assert_eq!(Route::parse(""), Route::Chats);
        assert_eq!(Route::parse("#/chat/zz"), Route::Chats);
        assert_eq!(Route::parse("#/nonsense"), Route::Chats);
        // Links written before conversations had ids still open the same chat.
        assert_eq!(Route::parse(&format!("#/chat/{}", a.to_hex())), Route::Chat(ConversationId::Direct(a)));
    }
}
