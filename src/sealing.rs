//! Secrets at rest. The credentials of sources, destinations and endpoints
//! created through the API live in the store; sealed with the gateway's
//! secrets key (ChaCha20-Poly1305, a fresh nonce per value, as Svix seals
//! endpoint secrets with its main key), a copy of the data directory or of a
//! backup alone does not give them away.
//!
//! The key is `server.secrets_key` (base64 of 32 bytes, `env:NAME` allowed),
//! or else one generated on first start and kept in `data_dir/secrets.key`
//! (mode 0600). Values stored before sealing existed read as they are, and
//! values sealed with the generated key still open once `server.secrets_key`
//! is set; either is sealed with the current key when next written.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use std::path::Path;

/// Marks a sealed value: `sealed:v1:` + base64(nonce ‖ ciphertext ‖ tag).
const SEALED_PREFIX: &str = "sealed:v1:";
const NONCE_BYTES: usize = 12;
const KEY_FILE: &str = "secrets.key";

/// The 32-byte key secrets are sealed with.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretsKey([u8; 32]);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(…)")
    }
}

impl SecretsKey {
    /// A key written as base64 of 32 bytes (`openssl rand -base64 32`).
    pub fn parse(text: &str) -> Result<SecretsKey, String> {
        let bytes = BASE64
            .decode(text.trim())
            .ok()
            .filter(|bytes| bytes.len() == 32)
            .ok_or("must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)")?;
        Ok(SecretsKey(bytes.try_into().expect("32 bytes")))
    }

    fn generate() -> SecretsKey {
        SecretsKey(ChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    /// The key kept in `data_dir`, if there is one.
    pub fn in_data_dir(data_dir: &Path) -> std::io::Result<Option<SecretsKey>> {
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => SecretsKey::parse(&text).map(Some).map_err(|message| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {message}", path.display()),
                )
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The key kept in `data_dir`, created (readable by its owner only) when
    /// there is none yet.
    pub fn of_data_dir(data_dir: &Path) -> std::io::Result<SecretsKey> {
        match SecretsKey::in_data_dir(data_dir)? {
            Some(key) => Ok(key),
            None => {
                let path = data_dir.join(KEY_FILE);
                let key = SecretsKey::generate();
                std::fs::create_dir_all(data_dir)?;
                crate::owner_only_file::write_whole(&path, BASE64.encode(key.0).as_bytes())?;
                tracing::warn!(
                    file = %path.display(),
                    "no server.secrets_key: generated a key to seal stored secrets with; \
                     back it up with the data (without it they cannot be read)"
                );
                Ok(key)
            }
        }
    }
}

/// Seals stored secrets with one key, and opens them with it or with an
/// older one.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
    older: Vec<ChaCha20Poly1305>,
}

impl Sealer {
    pub fn new(key: &SecretsKey) -> Sealer {
        Sealer::with_older(key, &[])
    }

    /// Seals with `key`; also opens what `older` keys sealed.
    pub fn with_older(key: &SecretsKey, older: &[SecretsKey]) -> Sealer {
        let cipher = |key: &SecretsKey| ChaCha20Poly1305::new(Key::from_slice(&key.0));
        Sealer {
            cipher: cipher(key),
            older: older.iter().map(cipher).collect(),
        }
    }

    pub fn seal(&self, plain: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, plain.as_bytes())
            .expect("sealing into memory cannot fail");
        format!(
            "{SEALED_PREFIX}{}",
            BASE64.encode([nonce.as_slice(), &sealed].concat())
        )
    }

    /// The secret a stored value holds: opened when sealed, as it is when it
    /// was stored before sealing existed.
    pub fn open(&self, stored: &str) -> Result<String, String> {
        let Some(encoded) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_string());
        };
        let refused = || "a sealed secret does not open with this secrets key".to_string();
        let bytes = BASE64.decode(encoded).map_err(|_| refused())?;
        if bytes.len() < NONCE_BYTES {
            return Err(refused());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let plain = std::iter::once(&self.cipher)
            .chain(&self.older)
            .find_map(|cipher| cipher.decrypt(Nonce::from_slice(nonce), sealed).ok())
            .ok_or_else(refused)?;
        String::from_utf8(plain).map_err(|_| refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_only_and_plain_values_read_as_they_are() {
        let sealer = Sealer::new(&SecretsKey::generate());
        let sealed = sealer.seal("hunter2");
        assert!(sealed.starts_with(SEALED_PREFIX) && !sealed.contains("hunter2"));
        assert_ne!(sealed, sealer.seal("hunter2"), "a fresh nonce each time");
        assert_eq!(sealer.open(&sealed).unwrap(), "hunter2");
        assert_eq!(sealer.open("plain").unwrap(), "plain");
        let other = SecretsKey::generate();
        assert!(Sealer::new(&other).open(&sealed).is_err());
        let first = SecretsKey::generate();
        let sealed_first = Sealer::new(&first).seal("old");
        let moved_on = Sealer::with_older(&other, &[first]);
        assert_eq!(moved_on.open(&sealed_first).unwrap(), "old");
    }

    #[test]
    fn the_data_dir_key_is_made_once_for_its_owner_only_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = SecretsKey::of_data_dir(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(SecretsKey::of_data_dir(dir.path()).unwrap(), key);
    }

    #[test]
    fn a_configured_key_must_be_32_bytes_of_base64() {
        assert!(SecretsKey::parse(&BASE64.encode([7u8; 32])).is_ok());
        assert!(SecretsKey::parse(&BASE64.encode([7u8; 16])).is_err());
        assert!(SecretsKey::parse("not base64!").is_err());
    }
}
