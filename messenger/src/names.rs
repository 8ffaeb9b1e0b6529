//! Display names: what a name may contain, and when two names read the same.
//!
//! A name never carries control characters or characters that reorder or hide text (bidi
//! overrides and isolates, zero-width spaces): those make "Ada" display as something else, or
//! two different names display alike. Two names read the same when they are equal after folding
//! case, Greek final sigma, invisible joiners and the Cyrillic, Greek and full-width letters
//! that look like Latin ones; a contact whose name reads like another's is flagged, when added
//! and on every rename.

use crate::profile::MAX_DISPLAY_NAME_CHARS;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NameError {
    #[error("Please enter a name people will recognise.")]
    Empty,
    #[error("That name is too long: keep it under {MAX_DISPLAY_NAME_CHARS} characters.")]
    TooLong,
    #[error("Names cannot contain control or text-direction characters.")]
    HiddenCharacters,
    #[error("That description is too long: keep it under {MAX_DESCRIPTION_CHARS} characters.")]
    DescriptionTooLong,
}

/// Longest group description.
pub const MAX_DESCRIPTION_CHARS: usize = 280;

/// Characters a name may not show: controls, bidi marks, embeddings, overrides and isolates,
/// and invisible format characters (soft hyphen, zero-width spaces, invisible operators, the
/// Mongolian vowel separator, tag characters). Joiners stay: emoji sequences need them.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{FEFF}'
        )
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2060}'..='\u{2064}').contains(&c)
        || ('\u{2066}'..='\u{206F}').contains(&c)
        || ('\u{E0000}'..='\u{E007F}').contains(&c)
}

/// Characters that show as nothing but are allowed (joiners, variation selectors, Hangul
/// fillers): left out when names are compared.
fn blank(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}' | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}')
        || ('\u{FE00}'..='\u{FE0F}').contains(&c)
}

/// Our own name, as typed: trimmed and checked.
pub fn validate(raw: &str) -> Result<String, NameError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    if name.chars().any(hidden) {
        return Err(NameError::HiddenCharacters);
    }
    Ok(name.to_string())
}

/// A contact's name as they sent it, made safe to show: hidden characters dropped, trimmed,
/// cut to the longest name we keep.
pub fn clean(raw: &str) -> String {
    let shown: String = raw.chars().filter(|c| !hidden(*c)).collect();
    shown.trim().chars().take(MAX_DISPLAY_NAME_CHARS).collect()
}

/// A group's description as typed: trimmed and checked (line breaks allowed; empty clears it).
pub fn validate_description(raw: &str) -> Result<String, NameError> {
    let text = raw.trim();
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(NameError::DescriptionTooLong);
    }
    if text.chars().any(|c| c != '\n' && hidden(c)) {
        return Err(NameError::HiddenCharacters);
    }
    Ok(text.to_string())
}

/// A description as an admin sent it, made safe to show (as [`clean`], keeping line breaks).
pub fn clean_description(raw: &str) -> String {
    let shown: String = raw.chars().filter(|c| *c == '\n' || !hidden(*c)).collect();
    shown.trim().chars().take(MAX_DESCRIPTION_CHARS).collect()
}

/// What someone is called before they have told us their name.
pub fn placeholder(address: &sotto_shared::Address) -> String {
    format!("Unknown {}", &address.to_hex()[..8])
}

/// The Latin letter a capital look-alike stands for, before case is folded (a capital Greek
/// eta looks like H, not like the n its small form resembles).
fn uncapital(c: char) -> char {
    match c {
        'Α' | 'А' => 'a',
        'Β' | 'В' => 'b',
        'Ε' | 'Е' => 'e',
        'Η' | 'Н' => 'h',
        'Ι' | 'І' | 'Ӏ' => 'i',
        'Ј' => 'j',
        'Κ' | 'К' => 'k',
        'Μ' | 'М' => 'm',
        'Ν' => 'n',
        'Ο' | 'О' => 'o',
        'Ρ' | 'Р' => 'p',
        'С' => 'c',
        'Τ' | 'Т' => 't',
        'Υ' | 'У' => 'y',
        'Χ' | 'Х' => 'x',
        'Ζ' => 'z',
        'Ѕ' => 's',
        other => other,
    }
}

/// The Latin letter a look-alike stands for.
fn unconfuse(c: char) -> char {
    match c {
        // Full-width ASCII.
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        // Cyrillic.
        'а' => 'a',
        'в' => 'b',
        'е' | 'ё' => 'e',
        'һ' => 'h',
        'і' | 'ӏ' => 'i',
        'ј' => 'j',
        'к' => 'k',
        'м' => 'm',
        'н' => 'h',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'т' => 't',
        'у' => 'y',
        'х' => 'x',
        'ѕ' => 's',
        'ԁ' => 'd',
        'ԛ' => 'q',
        'ԝ' => 'w',
        // Greek.
        'α' => 'a',
        'β' => 'b',
        'ε' => 'e',
        'η' => 'n',
        'ι' => 'i',
        'κ' => 'k',
        'ν' => 'v',
        'ο' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' => 'u',
        'χ' => 'x',
        'ς' => 'σ',
        other => other,
    }
}

/// A name as compared: lower case, look-alikes as the Latin letter, nothing invisible. With
/// `shapes`, capitals are first read by their shape (Greek capital eta as H), else by their
/// letter (as eta, so that a Greek name in capitals matches it in small letters).
fn folded(name: &str, shapes: bool) -> Vec<char> {
    let mut out = Vec::with_capacity(name.len());
    for c in name.chars() {
        if hidden(c) || blank(c) || c.is_whitespace() {
            continue;
        }
        let c = if shapes { uncapital(c) } else { c };
        for lower in c.to_lowercase() {
            out.push(unconfuse(lower));
        }
    }
    out
}

/// Whether two names read the same (see the module's doc).
pub fn same_name(a: &str, b: &str) -> bool {
    folded(a, false) == folded(b, false) || folded(a, true) == folded(b, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_names_are_trimmed_and_checked() {
        assert_eq!(validate("  Ada  "), Ok("Ada".into()));
        assert_eq!(validate("   "), Err(NameError::Empty));
        assert_eq!(validate(&"x".repeat(65)), Err(NameError::TooLong));
        assert_eq!(validate("a\u{7}b"), Err(NameError::HiddenCharacters));
        assert_eq!(validate("Ada\u{202E}nimda"), Err(NameError::HiddenCharacters), "right-to-left override");
        assert_eq!(validate("A\u{2066}da"), Err(NameError::HiddenCharacters), "isolate");
        assert_eq!(validate("Zoë 🌙 👨\u{200D}👩\u{200D}👧"), Ok("Zoë 🌙 👨\u{200D}👩\u{200D}👧".into()));
    }

    #[test]
    fn contacts_names_lose_what_would_hide_or_reorder_text() {
        assert_eq!(clean("Ada\u{202E}nimda"), "Adanimda");
        assert_eq!(clean(" \u{200B}Bo\u{7} "), "Bo");
        assert_eq!(clean(&"y".repeat(100)).chars().count(), MAX_DISPLAY_NAME_CHARS);
    }

    #[test]
    fn names_that_read_the_same_match() {
        assert!(same_name("Ada", "aDA"));
        assert!(same_name("ΟΔΥΣΣΕΥΣ", "οδυσσευς") && same_name("οδυσσευσ", "ΟΔΥΣΣΕΥΣ"));
        assert!(same_name("Émile", "émile"));
        assert!(same_name("Ada", "\u{0410}da"), "Cyrillic A");
        assert!(same_name("paypal", "раураl"), "Cyrillic р, а, у");
        assert!(same_name("Ada", "Ａｄａ"), "full-width");
        assert!(same_name("Ada", "A\u{200D}da") && same_name("Ada", "A da"), "joiners and spaces");
        assert!(!same_name("Ada", "Adam") && !same_name("Bo", "Bö"));
        // Invisible characters and capital look-alikes.
        assert!(
            same_name("Ada", "A\u{2062}da")
                && same_name("Ada", "A\u{00AD}da")
                && same_name("Ada", "Ada\u{FE0F}")
        );
        assert!(same_name("NINA", "ΝΙΝΑ") && same_name("HOME", "ΗΟΜΕ") && same_name("ZEUS", "ΖΕUS"));
        assert_eq!(clean("A\u{2062}da\u{E0041}"), "Ada");
    }
}
