//! The stored fields that hold secrets: sealed on their way in, opened on
//! their way out (see `sealing`), so that every other part of the gateway
//! sees them plain and the store's files never hold them so.

use super::{Result, Store, StoreError};
use crate::config::ApiObject;
use crate::model::{Endpoint, TransformationObject};
use crate::signing::workspace_secret::StoredSecret;
use serde_json::Value;

/// The fields of an API object that may hold credentials: a source's
/// verification, a destination's auth method, a connection's rules (their
/// transformations' env).
const SECRET_FIELDS: &[&str] = &["verification", "auth_method", "rules"];

impl Store {
    fn seal(&self, plain: &str) -> String {
        self.sealer.seal(plain)
    }

    fn open_sealed(&self, stored: &str) -> Result<String> {
        self.sealer.open(stored).map_err(StoreError::Sealed)
    }

    pub(super) fn sealed_object(&self, object: &ApiObject) -> Result<ApiObject> {
        let mut sealed = object.clone();
        for field in SECRET_FIELDS {
            if let Some(value) = sealed.fields.get_mut(*field).filter(|v| !v.is_null()) {
                *value = Value::String(self.seal(&serde_json::to_string(value)?));
            }
        }
        Ok(sealed)
    }

    pub(super) fn opened_object(&self, mut object: ApiObject) -> Result<ApiObject> {
        for field in SECRET_FIELDS {
            // A value stored before sealing is still its plain JSON.
            if let Some(value) = object.fields.get_mut(*field) {
                if let Value::String(sealed) = value {
                    *value = serde_json::from_str(&self.open_sealed(sealed)?)?;
                }
            }
        }
        Ok(object)
    }

    pub(super) fn sealed_endpoint(&self, endpoint: &Endpoint) -> Endpoint {
        let mut sealed = endpoint.clone();
        sealed.secret = self.seal(&endpoint.secret);
        for (secret, _) in &mut sealed.previous_secrets {
            *secret = self.seal(secret);
        }
        sealed
    }

    pub(super) fn opened_endpoint(&self, mut endpoint: Endpoint) -> Result<Endpoint> {
        endpoint.secret = self.open_sealed(&endpoint.secret)?;
        for (secret, _) in &mut endpoint.previous_secrets {
            *secret = self.open_sealed(secret)?;
        }
        Ok(endpoint)
    }

    pub(super) fn sealed_transformation(
        &self,
        transformation: &TransformationObject,
    ) -> TransformationObject {
        let mut sealed = transformation.clone();
        for value in sealed.env.values_mut() {
            *value = self.seal(value);
        }
        sealed
    }

    pub(super) fn opened_transformation(
        &self,
        mut transformation: TransformationObject,
    ) -> Result<TransformationObject> {
        for value in transformation.env.values_mut() {
            *value = self.open_sealed(value)?;
        }
        Ok(transformation)
    }

    /// The workspace signing secret is sealed whole: all of it is secret.
    pub(super) fn sealed_signing_secret(&self, stored: &StoredSecret) -> Result<String> {
        Ok(self.seal(&serde_json::to_string(stored)?))
    }

    pub(super) fn opened_signing_secret(&self, sealed: &[u8]) -> Result<StoredSecret> {
        let plain = self.open_sealed(&String::from_utf8_lossy(sealed))?;
        Ok(serde_json::from_str(&plain)?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{temp_store, ALL_API_OBJECTS};
    use crate::config::{ApiObject, ObjectKind};
    use serde_json::json;

    #[test]
    fn secrets_stored_plain_by_an_older_store_read_and_are_sealed_when_next_written() {
        let (_dir, store) = temp_store();
        let verification =
            json!({ "type": "basic_auth", "username": "u", "password": "pw-plain-before" });
        let source = ApiObject {
            kind: ObjectKind::Source,
            name: "s".into(),
            fields: json!({ "verification": verification })
                .as_object()
                .unwrap()
                .clone(),
            archived_at: None,
            kept_id: None,
        };
        let stored_bytes = || store.api_objects.get(ALL_API_OBJECTS).unwrap().unwrap();
        let plain = serde_json::to_vec(&[&source]).unwrap();
        store.api_objects.insert(ALL_API_OBJECTS, plain).unwrap();
        assert_eq!(store.api_objects().unwrap(), vec![source.clone()]);

        store
            .replace_api_objects(std::slice::from_ref(&source))
            .unwrap();
        let sealed = String::from_utf8(stored_bytes().to_vec()).unwrap();
        assert!(
            !sealed.contains("pw-plain-before") && sealed.contains("sealed:v1:"),
            "{sealed}"
        );
        assert_eq!(store.api_objects().unwrap(), vec![source]);
    }
}
