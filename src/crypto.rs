//! Sealing secrets at rest (OAuth tokens, client secrets) with AES-256-GCM.
//!
//! A sealed value is `v1.` + base64(nonce || ciphertext+tag). The associated data binds a sealed value to
//! the row and column it belongs to, so a ciphertext copied into another record does not open.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::fmt;

const PREFIX: &str = "v1.";
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error(
        "must be base64 (standard alphabet) of exactly 32 random bytes; generate one with `openssl rand -base64 32`"
    )]
    Malformed,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    #[error("sealed value is not in the expected format")]
    Format,
    #[error("sealed value does not open with this key (wrong key, or tampered data)")]
    Authentication,
}

/// A secret in memory (a token, a client secret). Its `Debug` never shows it; reading it is explicit.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The key that seals secrets at rest. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct SealingKey(Key<Aes256Gcm>);

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(…)")
    }
}

impl SealingKey {
    pub fn parse_base64(text: &str) -> Result<SealingKey, KeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| KeyError::Malformed)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Malformed)?;
        Ok(SealingKey(bytes.into()))
    }

    pub fn generate() -> SealingKey {
        SealingKey(Aes256Gcm::generate_key(OsRng))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.as_slice())
    }

    /// Seals `plaintext`; `context` (e.g. "connection:42:refresh_token") must be given again to open it.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let cipher = Aes256Gcm::new(&self.0);
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, OpenError> {
        let body = sealed.strip_prefix(PREFIX).ok_or(OpenError::Format)?;
        let raw = STANDARD.decode(body).map_err(|_| OpenError::Format)?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(OpenError::Format);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        Aes256Gcm::new(&self.0)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Authentication)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_hides_the_plaintext() {
        let key = SealingKey::generate();
        let sealed = key.seal(b"refresh-token-value", "connection:1:refresh");
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("refresh-token-value"));
        assert_eq!(
            key.open(&sealed, "connection:1:refresh").unwrap(),
            b"refresh-token-value"
        );
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let key = SealingKey::generate();
        assert_ne!(key.seal(b"x", "c"), key.seal(b"x", "c"));
    }

    #[test]
    fn wrong_key_wrong_context_or_tampering_fail() {
        let key = SealingKey::generate();
        let sealed = key.seal(b"secret", "connection:1");
        assert_eq!(
            SealingKey::generate().open(&sealed, "connection:1"),
            Err(OpenError::Authentication)
        );
        assert_eq!(
            key.open(&sealed, "connection:2"),
            Err(OpenError::Authentication)
        );
        let mut raw = STANDARD.decode(&sealed[3..]).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = format!("v1.{}", STANDARD.encode(raw));
        assert_eq!(
            key.open(&tampered, "connection:1"),
            Err(OpenError::Authentication)
        );
        assert_eq!(key.open("plain", "connection:1"), Err(OpenError::Format));
        assert_eq!(key.open("v1.AAAA", "connection:1"), Err(OpenError::Format));
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("0.refresh-token");
        assert_eq!(format!("{s:?}"), "Secret(…)");
        assert_eq!(s.expose(), "0.refresh-token");
    }

    #[test]
    fn key_parsing_round_trips_and_rejects_bad_input() {
        let key = SealingKey::generate();
        let again = SealingKey::parse_base64(&key.to_base64()).unwrap();
        let sealed = key.seal(b"v", "c");
        assert_eq!(again.open(&sealed, "c").unwrap(), b"v");
        assert_eq!(
            SealingKey::parse_base64("not base64!").unwrap_err(),
            KeyError::Malformed
        );
        // 16 bytes: valid base64, wrong length.
        assert_eq!(
            SealingKey::parse_base64("AAAAAAAAAAAAAAAAAAAAAA==").unwrap_err(),
            KeyError::Malformed
        );
        assert!(!format!("{key:?}").contains(&key.to_base64()));
    }
}
