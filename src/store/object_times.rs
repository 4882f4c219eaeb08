//! When each source, destination and connection was created and last changed.
//! Neither gateway.toml nor the API's stored objects say so, so the store keeps,
//! per object id, its times and a fingerprint of its declaration (see
//! `config::declarations`): an object seen for the first time is created now,
//! one whose fingerprint changed is updated now, and a restart with the same
//! declarations changes nothing.

use super::{get, put, values, Result, Store};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// An object's times, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectTimes {
    pub created_at: u64,
    pub updated_at: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Stamped {
    id: String,
    created_at: u64,
    updated_at: u64,
    fingerprint: String,
}

impl Store {
    /// Records the objects there are now (id → fingerprint of its declaration)
    /// at `now_ms`, and forgets those gone: one made again is new.
    pub fn stamp_objects(&self, current: &BTreeMap<String, String>, now_ms: u64) -> Result<()> {
        for (id, fingerprint) in current {
            let stamped = match get::<Stamped>(&self.object_times, id)? {
                Some(known) if known.fingerprint == *fingerprint => continue,
                Some(known) => Stamped {
                    updated_at: now_ms,
                    fingerprint: fingerprint.clone(),
                    ..known
                },
                None => Stamped {
                    id: id.clone(),
                    created_at: now_ms,
                    updated_at: now_ms,
                    fingerprint: fingerprint.clone(),
                },
            };
            put(&self.object_times, id, &stamped)?;
        }
        for key in self.object_times.iter().keys() {
            let key = key?;
            if !current.contains_key(String::from_utf8_lossy(&key).as_ref()) {
                self.object_times.remove(key)?;
            }
        }
        Ok(())
    }

    /// The times of every object recorded, by id.
    pub fn object_times(&self) -> Result<HashMap<String, ObjectTimes>> {
        values::<Stamped>(&self.object_times)
            .map(|stamped| {
                let stamped = stamped?;
                let times = ObjectTimes {
                    created_at: stamped.created_at,
                    updated_at: stamped.updated_at,
                };
                Ok((stamped.id, times))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(id, f)| (id.to_string(), f.to_string()))
            .collect()
    }

    #[test]
    fn a_new_object_is_created_a_changed_one_updated_a_gone_one_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        store
            .stamp_objects(&current(&[("src_a", "1"), ("src_b", "1")]), 10)
            .unwrap();
        store
            .stamp_objects(&current(&[("src_a", "1"), ("src_b", "2")]), 20)
            .unwrap();
        let times = store.object_times().unwrap();
        let stamped = |created_at, updated_at| ObjectTimes {
            created_at,
            updated_at,
        };
        assert_eq!(times["src_a"], stamped(10, 10));
        assert_eq!(times["src_b"], stamped(10, 20));
        store
            .stamp_objects(&current(&[("src_b", "2")]), 30)
            .unwrap();
        store
            .stamp_objects(&current(&[("src_a", "1"), ("src_b", "2")]), 40)
            .unwrap();
        let times = store.object_times().unwrap();
        assert_eq!(times["src_a"], stamped(40, 40));
        assert_eq!(times["src_b"], stamped(10, 20));
    }
}
