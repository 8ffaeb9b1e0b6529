//! What a message says about a file it carries: where the ciphertext waits at the relay, the
//! key and digest that open it (see `file`), and what the app shows before a byte is
//! downloaded: name, media type, size, a photo's thumbnail, a voice message's waveform.

use crate::EngineError;
use crate::consts::{
    MAX_FILE_BYTES, MAX_FILE_NAME_BYTES, MAX_MEDIA_TYPE_BYTES, MAX_TEXT_BYTES, MAX_THUMBNAIL_BYTES,
    MAX_VOICE_BYTES, MAX_WAVEFORM_LEVELS,
};
use crate::file::FileKey;
use serde::{Deserialize, Serialize};
use sotto_shared::ids::BlobId;

/// A file inside a message (direct, group or channel). Sealed inside that message, so the
/// relay that stores the blob never learns the key, name or type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub blob: BlobId,
    pub key: FileKey,
    /// SHA-256 of the whole ciphertext.
    pub digest: [u8; 32],
    /// Plaintext bytes.
    pub size: u64,
    pub name: String,
    /// As the sender's browser named it (`image/jpeg`); the receiver shows only the types it
    /// knows inline, and saves the rest.
    pub media_type: String,
    pub kind: AttachmentKind,
    /// Words sent with it (may be empty).
    pub caption: String,
}

/// How the app shows a file. Variants are only appended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttachmentKind {
    /// Any file: name, size and type, saved to disk.
    File,
    /// A photo: its thumbnail (JPEG) shows at once, the full image on a tap.
    Image { width: u32, height: u32, thumbnail: Vec<u8> },
    /// A video or audio file, played inline.
    Media { duration_ms: u32 },
    /// A recorded voice message: its waveform (levels 0 to 255) and length.
    Voice { duration_ms: u32, waveform: Vec<u8> },
}

/// Whether a file name may not hold `c`: path separators, NUL and other controls, and the
/// characters that reorder text (so `photo\u{202e}gpj.exe` cannot pass for a photo).
pub fn unfit_in_name(c: char) -> bool {
    matches!(c, '/' | '\\' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
        || c.is_control()
}

impl Attachment {
    /// Whether it keeps to the limits (checked before sending and on arrival).
    pub fn check(&self) -> Result<(), EngineError> {
        let bad = |what: &str| Err(EngineError::BadEncoding(format!("attachment: {what}")));
        if self.size > MAX_FILE_BYTES {
            return Err(EngineError::FileTooLarge);
        }
        if self.name.len() > MAX_FILE_NAME_BYTES || self.name.chars().any(unfit_in_name) {
            return bad("file name");
        }
        if self.media_type.len() > MAX_MEDIA_TYPE_BYTES || self.caption.len() > MAX_TEXT_BYTES {
            return bad("media type or caption too long");
        }
        match &self.kind {
            AttachmentKind::Image { thumbnail, .. } if thumbnail.len() > MAX_THUMBNAIL_BYTES => {
                bad("thumbnail too large")
            }
            AttachmentKind::Voice { waveform, .. } if waveform.len() > MAX_WAVEFORM_LEVELS => {
                bad("waveform too long")
            }
            // A voice message plays on a tap: it must not be a way to make someone download 2 GiB.
            AttachmentKind::Voice { .. } if self.size > MAX_VOICE_BYTES => bad("voice message too large"),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededEntropy;

    pub(crate) fn photo() -> Attachment {
        let mut e = SeededEntropy::new([4; 32]);
        Attachment {
            blob: BlobId([7; 16]),
            key: FileKey::generate(&mut e).unwrap(),
            digest: [9; 32],
            size: 123_456,
            name: "beach.jpg".into(),
            media_type: "image/jpeg".into(),
            kind: AttachmentKind::Image { width: 800, height: 600, thumbnail: vec![1; 900] },
            caption: "look".into(),
        }
    }

    #[test]
    fn file_messages_round_trip_and_ones_past_the_limits_are_refused_on_arrival() {
        use crate::message::{Body, Message};
        let m = Message {
            v: crate::message::VERSION,
            id: [1; 16],
            sent_at_ms: 5,
            expires_after_secs: None,
            body: Body::File(Box::new(photo())),
        };
        assert_eq!(Message::decode(&m.encode().unwrap()).unwrap(), m);
        let mut bad = m.clone();
        bad.body = Body::File(Box::new(Attachment { name: "a/b".into(), ..photo() }));
        assert!(bad.encode().is_err(), "not sent");
        let forged = crate::padding::padded(&bad).unwrap();
        assert!(Message::decode(&forged).is_err(), "refused when another client sends it");
    }

    #[test]
    fn limits_are_kept_and_the_key_never_prints() {
        let a = photo();
        a.check().unwrap();
        assert!(!format!("{a:?}").contains(&format!("{:?}", a.key.to_bytes())));
        let with = |f: &dyn Fn(&mut Attachment)| {
            let mut b = photo();
            f(&mut b);
            b.check()
        };
        assert!(with(&|b| b.size = MAX_FILE_BYTES + 1).is_err());
        assert!(with(&|b| b.name = "../../etc/passwd".into()).is_err());
        assert!(with(&|b| b.name = "photo\u{202e}gpj.exe".into()).is_err(), "a name that reads backwards");
        assert!(with(&|b| b.name = "a\nb".into()).is_err());
        assert!(
            with(&|b| {
                b.kind = AttachmentKind::Voice { duration_ms: 3000, waveform: vec![1; 10] };
                b.size = MAX_VOICE_BYTES + 1;
            })
            .is_err(),
            "a 3-second voice message of gigabytes"
        );
        assert!(with(&|b| b.name = "x".repeat(MAX_FILE_NAME_BYTES + 1)).is_err());
        assert!(with(&|b| b.media_type = "x".repeat(MAX_MEDIA_TYPE_BYTES + 1)).is_err());
        assert!(
            with(&|b| b.kind = AttachmentKind::Image { width: 1, height: 1, thumbnail: vec![0; 20_000] })
                .is_err()
        );
        assert!(
            with(&|b| b.kind = AttachmentKind::Voice { duration_ms: 1, waveform: vec![0; 101] }).is_err()
        );
    }
}
