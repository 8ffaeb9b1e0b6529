//! Rules of the onboarding form, kept free of UI types so they are tested natively.

pub use sotto_messenger::profile::MAX_DISPLAY_NAME_CHARS;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error("Please enter a name people will recognise.")]
    Empty,
    #[error("That name is too long: keep it under {MAX_DISPLAY_NAME_CHARS} characters.")]
    TooLong,
    #[error("Names cannot contain control characters.")]
    ControlCharacters,
}

/// Trims and checks a display name.
pub fn validate_display_name(raw: &str) -> Result<String, NameError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::ControlCharacters);
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate_display_name("  Ada  "), Ok("Ada".into()));
        assert_eq!(validate_display_name("   "), Err(NameError::Empty));
        assert_eq!(validate_display_name(&"x".repeat(65)), Err(NameError::TooLong));
        assert_eq!(validate_display_name("a\u{7}b"), Err(NameError::ControlCharacters));
        assert_eq!(validate_display_name("Zoë 🌙"), Ok("Zoë 🌙".into()));
    }
}
