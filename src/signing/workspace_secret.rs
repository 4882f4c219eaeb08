//! The workspace signing secret: the key of `x-hookdeck-signature` (and of
//! `x-hookgate-signature`) on every delivery to a destination with the default
//! auth method. Hookdeck signs with a secret it generates for the project; so
//! does hookgate: one generated on first start (32 random bytes) and kept in
//! `data_dir/signing-secret.json`, readable by its owner only, like
//! `secrets.key`. In a cluster every node must sign with the same one: the
//! store keeps it (sealed, in the database; `store/signing_secret.rs`), the
//! first node to start generates it and each other node reads it.
//! `[delivery] signing_secret` in gateway.toml wins over it.
//!
//! Through the API (`src/api/signing_secret.rs`) the stored secret is shown,
//! set or rotated. A change signs every attempt sent from then on, retries of
//! events queued before included: an attempt signs when it is sent. For an
//! overlap window (a day by default) the previous secret signs as well, in
//! `x-hookdeck-signature-2`, the header Hookdeck's own verification helper
//! also accepts, so that receivers can switch secrets without refusing a
//! delivery meanwhile. A change made through another node of a cluster is
//! announced by the database; each node then reads the secret again
//! (`WorkspaceSecret::refresh`).

use crate::store::{Store, StoreError};
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
    /// A newly generated secret, with no previous one.
    fn generated(now_ms: u64) -> StoredSecret {
        StoredSecret {
            secret: generate(),
            updated_at: now_ms,
            previous: None,
        }
    }

    /// The previous secret, while it still signs.
    pub fn overlapping(&self, now_ms: u64) -> Option<&PreviousSecret> {
        self.previous.as_ref().filter(|p| p.until > now_ms)
    }
}

/// Why the stored secret could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Store(#[from] StoreError),
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
    Keep(#[from] KeepError),
}

/// Where the stored secret is kept.
pub enum Home {
    /// `data_dir/signing-secret.json`: the node's own.
    DataDir(PathBuf),
    /// The store, when every node of a cluster shares it; and the node's
    /// `data_dir/signing-secret.json`, which a node moved from the embedded
    /// store still has (see `load_or_generate`).
    Store(Store, PathBuf),
}

impl Home {
    /// The store when it keeps the secret (a cluster's database), else `data_dir`.
    pub fn of(store: &Store, data_dir: &Path) -> Home {
        if store.keeps_signing_secret() {
            Home::Store(store.clone(), data_dir.join(FILE))
        } else {
            Home::in_data_dir(data_dir)
        }
    }

    /// `data_dir/signing-secret.json`.
    pub fn in_data_dir(data_dir: &Path) -> Home {
        Home::DataDir(data_dir.join(FILE))
    }

    /// Where it is, as the API's `set_in` names it.
    pub fn name(&self) -> &'static str {
        match self {
            Home::DataDir(_) => "data_dir",
            Home::Store(..) => "database",
        }
    }

    /// The secret kept here, generated and kept first when there is none.
    /// In a cluster the first node's wins: the others read it. A node moved
    /// from the embedded store offers the secret of its `data_dir` rather
    /// than a new one, so that its receivers still verify what the cluster
    /// signs.
    fn load_or_generate(&self, now_ms: u64) -> Result<StoredSecret, KeepError> {
        match self {
            Home::DataDir(file) => match read(file)? {
                Some(kept) => Ok(kept),
                None => {
                    let generated = StoredSecret::generated(now_ms);
                    save(file, &generated)?;
                    tracing::info!(file = %file.display(), "generated the workspace signing secret");
                    Ok(generated)
                }
            },
            // Nodes starting together each offer one: the first stored
            // is kept, and the others take it.
            Home::Store(store, left_in_data_dir) => loop {
                if let Some(kept) = store.signing_secret()? {
                    return Ok(kept);
                }
                let (offered, from) = match read(left_in_data_dir)? {
                    Some(left) => (left, "taken from this node's data_dir"),
                    None => (StoredSecret::generated(now_ms), "generated"),
                };
                if let Some(kept) = store.swap_signing_secret(None, &offered)? {
                    if kept == offered {
                        tracing::info!("the cluster's workspace signing secret: {from}");
                    }
                    return Ok(kept);
                }
            },
        }
    }

    /// Keeps `change` applied to `before`; in a cluster, applied again to
    /// what another node stored meanwhile (None: nothing, which only a hand
    /// on the database can make), so that no change is lost. Returns what
    /// is kept now.
    fn change(
        &self,
        before: &StoredSecret,
        change: impl Fn(Option<&StoredSecret>) -> StoredSecret,
    ) -> Result<StoredSecret, KeepError> {
        match self {
            Home::DataDir(file) => {
                let changed = change(Some(before));
                save(file, &changed)?;
                Ok(changed)
            }
            Home::Store(store, _) => {
                let mut before = Some(before.clone());
                loop {
                    let changed = change(before.as_ref());
                    before = store.swap_signing_secret(before.as_ref(), &changed)?;
                    if before.as_ref() == Some(&changed) {
                        return Ok(changed);
                    }
                }
            }
        }
    }
}

impl std::fmt::Display for Home {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Home::DataDir(file) => write!(f, "{}", file.display()),
            Home::Store(..) => {
                f.write_str("the database (sealed with server.secrets_key: the same on every node)")
            }
        }
    }
}

/// The gateway's signing secret; cheap to clone, shared by delivery and the API.
#[derive(Clone)]
pub struct WorkspaceSecret(Arc<Inner>);

struct Inner {
    home: Home,
    stored: ArcSwap<StoredSecret>,
    /// `[delivery] signing_secret`, resolved (replaced on reload).
    configured: ArcSwapOption<String>,
    /// One change (or refresh) at a time, so that none is lost between read and write.
    changes: Mutex<()>,
}

impl WorkspaceSecret {
    /// The secret kept in `home`, generated on first start.
    pub fn open(
        home: Home,
        configured: Option<String>,
        now_ms: u64,
    ) -> Result<WorkspaceSecret, KeepError> {
        let stored = home.load_or_generate(now_ms)?;
        Ok(WorkspaceSecret(Arc::new(Inner {
            home,
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

    /// Where the stored secret is kept.
    pub fn home(&self) -> &Home {
        &self.0.home
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

    /// The stored secret and its previous one, as kept in its home.
    pub fn stored(&self) -> Arc<StoredSecret> {
        self.0.stored.load_full()
    }

    /// Reads the stored secret again: another node of a cluster changed it
    /// (blocking). A node's own `data_dir` changes only through itself.
    pub fn refresh(&self) -> Result<(), KeepError> {
        let Home::Store(store, _) = &self.0.home else {
            return Ok(());
        };
        let _one_change = self.0.changes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(stored) = store.signing_secret()? {
            self.0.stored.store(Arc::new(stored));
        }
        Ok(())
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
        let changed = self.0.home.change(&self.0.stored.load(), |before| {
            let replaced = before.filter(|before| overlap_ms > 0 && before.secret != secret);
            let previous = replaced.map(|before| PreviousSecret {
                secret: before.secret.clone(),
                until: now_ms.saturating_add(overlap_ms),
            });
            StoredSecret {
                secret: secret.clone(),
                updated_at: now_ms,
                previous,
            }
        })?;
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

/// What `file` holds; None when there is no such file.
fn read(file: &Path) -> Result<Option<StoredSecret>, KeepError> {
    match std::fs::read(file) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
            let message = format!("{}: {e}", file.display());
            std::io::Error::new(std::io::ErrorKind::InvalidData, message)
        })?)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error.into()),
    }
}

fn save(file: &Path, stored: &StoredSecret) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::owner_only_file::write_whole(file, &serde_json::to_vec_pretty(stored)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn generated_once_kept_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = WorkspaceSecret::open(Home::in_data_dir(dir.path()), None, 1).unwrap();
        let secret = first.keys(1).current;
        assert_eq!(secret.len(), 43);
        let mode = std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = WorkspaceSecret::open(Home::in_data_dir(dir.path()), None, 2).unwrap();
        assert_eq!(again.keys(2), SigningKeys::single(secret));
    }

    #[test]
    fn the_configured_secret_wins_and_refuses_changes() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = WorkspaceSecret::open(
            Home::in_data_dir(dir.path()),
            Some("from-the-file".into()),
            1,
        )
        .unwrap();
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
        let workspace = WorkspaceSecret::open(Home::in_data_dir(dir.path()), None, 0).unwrap();
        let old = workspace.keys(0).current;
        workspace
            .replace("a-new-secret-of-some-length".into(), 1000, 10)
            .unwrap();
        let during = workspace.keys(1009);
        assert_eq!(during.current, "a-new-secret-of-some-length");
        assert_eq!(during.previous.as_deref(), Some(old.as_str()));
        assert_eq!(workspace.keys(1010).previous, None);
        // Kept across a restart, window included.
        let reopened = WorkspaceSecret::open(Home::in_data_dir(dir.path()), None, 20).unwrap();
        assert_eq!(reopened.keys(1009), during);
        // No overlap asked: the old one stops at once.
        reopened.rotate(0, 30).unwrap();
        assert_eq!(reopened.keys(31).previous, None);
    }

    #[test]
    fn a_given_secret_must_look_like_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let workspace = WorkspaceSecret::open(Home::in_data_dir(dir.path()), None, 0).unwrap();
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

    /// `nodes` stores on one new database of the test server, each in a
    /// data dir of its own and sealing with one secrets key, as a cluster's
    /// nodes are.
    fn cluster(nodes: usize) -> Vec<(tempfile::TempDir, Store)> {
        use base64::engine::general_purpose::STANDARD;
        let key = crate::sealing::SecretsKey::parse(&STANDARD.encode([7u8; 32])).unwrap();
        let database = crate::store::test_postgres::database();
        let backend = crate::store::Backend::Postgres(Box::new(database));
        (0..nodes)
            .map(|_| {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open_backed(dir.path(), 1 << 20, 1 << 20, Some(&key), &backend);
                (dir, store.unwrap())
            })
            .collect()
    }

    fn open_on((dir, store): &(tempfile::TempDir, Store), now_ms: u64) -> WorkspaceSecret {
        WorkspaceSecret::open(Home::of(store, dir.path()), None, now_ms).unwrap()
    }

    #[test]
    fn in_a_cluster_the_secret_of_the_first_node_to_store_one_is_every_nodes() {
        let nodes = cluster(3);
        // Started at once: each generates one, one of them is kept.
        let opened: Vec<WorkspaceSecret> = std::thread::scope(|scope| {
            let opening: Vec<_> = nodes
                .iter()
                .map(|node| scope.spawn(move || open_on(node, 1)))
                .collect();
            opening.into_iter().map(|o| o.join().unwrap()).collect()
        });
        let first = opened[0].keys(1);
        assert_eq!(first.current.len(), 43);
        for workspace in &opened {
            assert_eq!(workspace.keys(1), first);
            assert_eq!(workspace.home().name(), "database");
        }
        for (dir, _) in &nodes {
            assert!(!dir.path().join(FILE).exists(), "nothing in data_dir");
        }
        assert_eq!(open_on(&nodes[1], 2).keys(2), first, "read on a restart");
    }

    /// The secret a node signed with on the embedded store, left in its data dir.
    fn left_in_data_dir((dir, _): &(tempfile::TempDir, Store), secret: &str) -> StoredSecret {
        let left = StoredSecret {
            secret: secret.into(),
            updated_at: 5,
            previous: None,
        };
        save(&dir.path().join(FILE), &left).unwrap();
        left
    }

    #[test]
    fn a_node_moved_from_the_embedded_store_gives_a_new_cluster_its_secret() {
        let nodes = cluster(2);
        let left = left_in_data_dir(&nodes[0], "signed-with-before-the-move");
        let moved = open_on(&nodes[0], 10);
        assert_eq!(moved.stored().as_ref(), &left);
        assert_eq!(open_on(&nodes[1], 10).keys(10), moved.keys(10));
        assert_eq!(nodes[0].1.signing_secret().unwrap(), Some(left));
    }

    #[test]
    fn a_clusters_secret_wins_over_one_left_in_a_joining_nodes_data_dir() {
        let nodes = cluster(2);
        let first = open_on(&nodes[0], 1).keys(1);
        left_in_data_dir(&nodes[1], "signed-with-before-the-move");
        assert_eq!(open_on(&nodes[1], 2).keys(2), first);
    }

    #[test]
    fn in_a_cluster_a_change_through_one_node_signs_on_another_once_read_again() {
        let nodes = cluster(2);
        let (a, b) = (open_on(&nodes[0], 0), open_on(&nodes[1], 0));
        let old = a.keys(0).current;
        b.replace("set-through-node-b-api".into(), 1000, 10)
            .unwrap();
        assert_eq!(a.keys(20).current, old, "until it reads the secret again");
        a.refresh().unwrap();
        let during = a.keys(20);
        assert_eq!(during.current, "set-through-node-b-api");
        assert_eq!(during.previous.as_deref(), Some(old.as_str()));
        assert_eq!(during, b.keys(20));
    }

    #[test]
    fn in_a_cluster_a_change_over_a_secret_changed_meanwhile_keeps_the_other_change() {
        let nodes = cluster(2);
        let (a, b) = (open_on(&nodes[0], 0), open_on(&nodes[1], 0));
        a.replace("set-through-node-a-api".into(), 1000, 10)
            .unwrap();
        // Node B has not read A's change: its own is made over A's, whose
        // secret keeps signing for B's overlap window.
        b.replace("set-through-node-b-api".into(), 1000, 20)
            .unwrap();
        a.refresh().unwrap();
        for node in [&a, &b] {
            let keys = node.keys(30);
            assert_eq!(keys.current, "set-through-node-b-api");
            assert_eq!(keys.previous.as_deref(), Some("set-through-node-a-api"));
        }
    }
}
