//! The workspace signing secret: the key of `x-hookdeck-signature` (and of
//! `x-hookgate-signature`) on every delivery to a destination with the default
//! auth method. Hookdeck signs with a secret it generates for the project; so
//! does hookgate: one generated on first start (32 random bytes) and kept in
//! `data_dir/signing-secret.json`, readable by its owner only, like
//! `secrets.key`. `[delivery] signing_secret` in gateway.toml wins over it.
//!
//! Through the API (`src/api/signing_secret.rs`) the stored secret is shown,
//! set or rotated. A change signs every attempt sent from then on, retries of
//! events queued before included: an attempt signs when it is sent. For an
//! overlap window (a day by default) the previous secret signs as well, in
//! `x-hookdeck-signature-2`, the header Hookdeck's own verification helper
//! also accepts, so that receivers can switch secrets without refusing a
//! delivery meanwhile.

use arc_swap::{ArcSwap, ArcSwapOption};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const FILE: &str = "signing-secret.json";

/// How long the previous secret keeps signing after a change, unless the
/// change says otherwise.
pub const DEFAULT_OVERLAP_MS: u64 = 24 * 60 * 60 * 1000;

/// The longest overlap a change may ask for (30 days).
pub const MAX_OVERLAP_MS: u64 = 30 * DEFAULT_OVERLAP_MS;

/// Bounds of a secret set through the API: long enough to be a key, short
/// and plain enough to sit in an environment variable.
const MIN_SECRET_CHARS: usize = 16;
const MAX_SECRET_CHARS: usize = 256;

/// The secrets that sign an attempt sent now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeys {
    pub current: String,
    /// The secret before the last change, while its overlap window lasts.
    pub previous: Option<String>,
}

impl SigningKeys {
    /// One secret, no overlap.
    pub fn single(secret: impl Into<String>) -> SigningKeys {
        SigningKeys {
            current: secret.into(),
            previous: None,
        }
    }
}

/// What `signing-secret.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredSecret {
    pub secret: String,
    /// Unix ms of the last change.
    pub updated_at: u64,
    #[serde(default)]
    pub previous: Option<PreviousSecret>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousSecret {
    pub secret: String,
    /// Unix ms after which it no longer signs.
    pub until: u64,
}

impl StoredSecret {
    /// The previous secret, while it still signs.
    pub fn overlapping(&self, now_ms: u64) -> Option<&PreviousSecret> {
        self.previous.as_ref().filter(|p| p.until > now_ms)
    }
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(
        "the signing secret is set in gateway.toml ([delivery] signing_secret): change it there"
    )]
    Configured,
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("cannot save the signing secret: {0}")]
    Io(#[from] std::io::Error),
}

/// The gateway's signing secret; cheap to clone, shared by delivery and the API.
#[derive(Clone)]
pub struct WorkspaceSecret(Arc<Inner>);

struct Inner {
    file: PathBuf,
    stored: ArcSwap<StoredSecret>,
    /// `[delivery] signing_secret`, resolved (replaced on reload).
    configured: ArcSwapOption<String>,
    /// One change at a time, so that none is lost between read and write.
    changes: Mutex<()>,
}

impl WorkspaceSecret {
    /// The secret kept in `data_dir`, generated on first start.
    pub fn open(
        data_dir: &Path,
        configured: Option<String>,
        now_ms: u64,
    ) -> std::io::Result<WorkspaceSecret> {
        let file = data_dir.join(FILE);
        let stored = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                let message = format!("{}: {e}", file.display());
                std::io::Error::new(std::io::ErrorKind::InvalidData, message)
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let stored = StoredSecret {
                    secret: generate(),
                    updated_at: now_ms,
                    previous: None,
                };
                std::fs::create_dir_all(data_dir)?;
                save(&file, &stored)?;
                tracing::info!(file = %file.display(), "generated the workspace signing secret");
                stored
            }
            Err(error) => return Err(error),
        };
        Ok(WorkspaceSecret(Arc::new(Inner {
            file,
            stored: ArcSwap::from_pointee(stored),
            configured: ArcSwapOption::new(configured.map(Arc::new)),
            changes: Mutex::default(),
        })))
    }

    /// Takes `[delivery] signing_secret` as (re)loaded.
    pub fn configure(&self, configured: Option<String>) {
        self.0.configured.store(configured.map(Arc::new));
    }

    /// Whether gateway.toml sets the secret (the stored one is then unused).
    pub fn is_configured(&self) -> bool {
        self.0.configured.load().is_some()
    }

    /// The secrets an attempt sent at `now_ms` is signed with.
    pub fn keys(&self, now_ms: u64) -> SigningKeys {
        if let Some(configured) = self.0.configured.load_full() {
            return SigningKeys::single(configured.as_str());
        }
        let stored = self.0.stored.load();
        SigningKeys {
            current: stored.secret.clone(),
            previous: stored.overlapping(now_ms).map(|p| p.secret.clone()),
        }
    }

    /// The stored secret and its previous one, as kept in `data_dir`.
    pub fn stored(&self) -> Arc<StoredSecret> {
        self.0.stored.load_full()
    }

    /// Signs with `secret` from now on; the current one keeps signing for
    /// `overlap_ms` more (0: stops now).
    pub fn replace(&self, secret: String, overlap_ms: u64, now_ms: u64) -> Result<(), ChangeError> {
        check_secret(&secret).map_err(|message| ChangeError::Invalid {
            field: "secret",
            message,
        })?;
        if overlap_ms > MAX_OVERLAP_MS {
            return Err(ChangeError::Invalid {
                field: "previous_secret_valid_ms",
                message: format!("at most {MAX_OVERLAP_MS} (30 days)"),
            });
        }
        let _one_change = self.0.changes.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_configured() {
            return Err(ChangeError::Configured);
        }
        let before = self.0.stored.load();
        let previous = (overlap_ms > 0 && before.secret != secret).then(|| PreviousSecret {
            secret: before.secret.clone(),
            until: now_ms.saturating_add(overlap_ms),
        });
        let changed = StoredSecret {
            secret,
            updated_at: now_ms,
            previous,
        };
        save(&self.0.file, &changed)?;
        self.0.stored.store(Arc::new(changed));
        Ok(())
    }

    /// Replaces the secret with a newly generated one.
    pub fn rotate(&self, overlap_ms: u64, now_ms: u64) -> Result<(), ChangeError> {
        self.replace(generate(), overlap_ms, now_ms)
    }
}

/// 32 random bytes, URL-safe base64 (43 characters).
fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A secret given through the API: 16 to 256 visible ASCII characters.
fn check_secret(secret: &str) -> Result<(), String> {
    let plain = secret.bytes().all(|b| b.is_ascii_graphic());
    if !plain || !(MIN_SECRET_CHARS..=MAX_SECRET_CHARS).contains(&secret.len()) {
        return Err(format!(
            "{MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} visible ASCII characters (no spaces)"
        ));
    }
    Ok(())
}

fn save(file: &Path, stored: &StoredSecret) -> std::io::Result<()> {
    crate::owner_only_file::write_whole(file, &serde_json::to_vec_pretty(stored)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn generated_once_kept_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = WorkspaceSecret::open(dir.path(), None, 1).unwrap();
        let secret = first.keys(1).current;
        assert_eq!(secret.len(), 43);
        let mode = std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = WorkspaceSecret::open(dir.path(), None, 2).unwrap();
        assert_eq!(again.keys(2), SigningKeys::single(secret));
    }

    #[test]
    fn the_configured_secret_wins_and_refuses_changes() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = WorkspaceSecret::open(dir.path(), Some("from-the-file".into()), 1).unwrap();
        assert_eq!(workspace.keys(1), SigningKeys::single("from-the-file"));
        assert!(matches!(
            workspace.rotate(0, 2),
            Err(ChangeError::Configured)
        ));
        workspace.configure(None);
        assert_ne!(workspace.keys(3).current, "from-the-file");
    }

    #[test]
    fn the_previous_secret_signs_until_its_window_ends() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = WorkspaceSecret::open(dir.path(), None, 0).unwrap();
        let old = workspace.keys(0).current;
        workspace
            .replace("a-new-secret-of-some-length".into(), 1000, 10)
            .unwrap();
        let during = workspace.keys(1009);
        assert_eq!(during.current, "a-new-secret-of-some-length");
        assert_eq!(during.previous.as_deref(), Some(old.as_str()));
        assert_eq!(workspace.keys(1010).previous, None);
        // Kept across a restart, window included.
        let reopened = WorkspaceSecret::open(dir.path(), None, 20).unwrap();
        assert_eq!(reopened.keys(1009), during);
        // No overlap asked: the old one stops at once.
        reopened.rotate(0, 30).unwrap();
        assert_eq!(reopened.keys(31).previous, None);
    }

    #[test]
    fn a_given_secret_must_look_like_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = WorkspaceSecret::open(dir.path(), None, 0).unwrap();
        for bad in ["short", "has a space in it here", &"x".repeat(257)] {
            assert!(matches!(
                workspace.replace(bad.to_string(), 0, 1),
                Err(ChangeError::Invalid { .. })
            ));
        }
        assert!(matches!(
            workspace.replace("x".repeat(16), MAX_OVERLAP_MS + 1, 1),
            Err(ChangeError::Invalid { .. })
        ));
    }
}
