//! How a message's delivery status is shown: words for people, a class for the stylesheet.

use sotto_messenger::Status;

/// What the status says, in words.
pub fn label(s: Status) -> &'static str {
    match s {
        Status::Sending => "Sending",
        Status::Sent => "Sent",
        Status::Delivered => "Delivered",
        Status::Read => "Read",
        Status::Failed => "Not sent",
    }
}

/// The CSS class (and `data-status`) of the status: one identifier, never derived from the
/// words (a "Not sent" label once became the two classes `not` and `sent`, so the failure
/// style never applied).
pub fn class(s: Status) -> &'static str {
    match s {
        Status::Sending => "sending",
        Status::Sent => "sent",
        Status::Delivered => "delivered",
        Status::Read => "read",
        Status::Failed => "failed",
    }
}

pub fn icon(s: Status) -> &'static str {
    match s {
        Status::Sending => "◷",
        Status::Sent => "✓",
        Status::Delivered => "✓✓",
        Status::Read => "✓✓",
        Status::Failed => "!",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Status; 5] = [Status::Sending, Status::Sent, Status::Delivered, Status::Read, Status::Failed];

    #[test]
    fn classes_are_single_identifiers_and_the_styled_ones_match_the_stylesheet() {
        for s in ALL {
            let c = class(s);
            assert!(!c.is_empty() && c.chars().all(|ch| ch.is_ascii_lowercase()), "{c:?}");
        }
        let css = include_str!("../static/style.css");
        for s in [Status::Read, Status::Failed] {
            let rule = format!(".status.{} {{", class(s));
            assert!(css.contains(&rule), "style.css has no `{rule}`");
        }
    }
}
