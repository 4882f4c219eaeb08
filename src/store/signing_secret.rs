//! The workspace signing secret of a cluster (see `signing::workspace_secret`):
//! every node must sign with the same one, so on a remote keyspace it lives in
//! the database, in the tree `signing_secret` under one key, sealed whole as
//! the other stored secrets are (`secrets`). Nodes change it by compare and
//! swap, never overwriting what another node stored since they read it; the
//! database announces each change to every node (migration 0005). A node
//! alone (the embedded store) keeps it in its `data_dir` instead.

use super::{Result, Store};
use crate::signing::workspace_secret::StoredSecret;

/// The tree's one key.
const CURRENT: &[u8] = b"current";

impl Store {
    /// Whether the workspace signing secret is kept here for every node (a
    /// cluster's database) rather than in the node's `data_dir`.
    pub fn keeps_signing_secret(&self) -> bool {
        self.db.is_remote()
    }

    /// The stored signing secret; None until a node has stored one.
    pub fn signing_secret(&self) -> Result<Option<StoredSecret>> {
        let sealed = self.signing_secret.get(CURRENT)?;
        sealed.map(|s| self.opened_signing_secret(&s)).transpose()
    }

    /// Stores `changed` in place of `before` (None: no secret yet) unless
    /// another node has changed it since; returns the secret stored now:
    /// `changed`, or else the other node's (and nothing was written).
    pub fn swap_signing_secret(
        &self,
        before: Option<&StoredSecret>,
        changed: &StoredSecret,
    ) -> Result<Option<StoredSecret>> {
        let sealed_before = self.signing_secret.get(CURRENT)?;
        let current = sealed_before
            .as_ref()
            .map(|s| self.opened_signing_secret(s))
            .transpose()?;
        if current.as_ref() != before {
            return Ok(current);
        }
        let sealed = self.sealed_signing_secret(changed)?;
        let swapped = self.signing_secret.compare_and_swap(
            CURRENT,
            sealed_before,
            Some(sealed.as_bytes()),
        )?;
        match swapped {
            Ok(()) => Ok(Some(changed.clone())),
            Err(lost) => lost
                .current
                .map(|s| self.opened_signing_secret(&s))
                .transpose(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{temp_store_on, TestBackend};
    use crate::signing::workspace_secret::StoredSecret;

    fn secret(text: &str, updated_at: u64) -> StoredSecret {
        StoredSecret {
            secret: text.into(),
            updated_at,
            previous: None,
        }
    }

    fn swapped_only_over_what_was_read(backend: TestBackend) {
        let (_dir, store) = temp_store_on(backend);
        assert_eq!(store.signing_secret().unwrap(), None);
        let first = secret("first-secret-of-the-cluster", 1);
        let kept = store.swap_signing_secret(None, &first).unwrap();
        assert_eq!(kept.as_ref(), Some(&first));
        // A second first start loses: the secret stored stays.
        let late = secret("another-nodes-first-secret", 2);
        assert_eq!(store.swap_signing_secret(None, &late).unwrap(), kept);
        // So does a change made over a secret read before another node's change.
        let second = secret("second-secret-of-the-cluster", 3);
        let stale = secret("third-secret-of-the-cluster", 4);
        assert_eq!(
            store.swap_signing_secret(Some(&first), &second).unwrap(),
            Some(second.clone())
        );
        assert_eq!(
            store.swap_signing_secret(Some(&first), &stale).unwrap(),
            Some(second.clone())
        );
        assert_eq!(store.signing_secret().unwrap(), Some(second));
    }

    fn stored_sealed(backend: TestBackend) {
        let (_dir, store) = temp_store_on(backend);
        let plain = secret("never-stored-in-the-clear", 1);
        store.swap_signing_secret(None, &plain).unwrap();
        let stored = store.signing_secret.get(super::CURRENT).unwrap().unwrap();
        let stored = String::from_utf8_lossy(&stored);
        assert!(
            stored.starts_with("sealed:v1:") && !stored.contains("never-stored"),
            "{stored}"
        );
    }

    on_both_backends!(swapped_only_over_what_was_read, stored_sealed);
}
