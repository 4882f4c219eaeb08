//! Issues, the triggers that open them, and where they are announced.

use super::{get, put, values, Result, Store};
use crate::model::{Issue, IssueTrigger, IssueType, NotificationSettings};

/// The `meta` key of the webhook notification settings.
const NOTIFICATION_SETTINGS: &[u8] = b"notification_webhooks";

impl Store {
    pub fn save_issue(&self, issue: &Issue) -> Result<()> {
        self.open_issues.save(&self.issues, &issue.id, issue)?;
        self.issue_keys
            .insert(issue.aggregation_key.as_bytes(), issue.id.as_bytes())?;
        Ok(())
    }

    pub fn issue(&self, id: &str) -> Result<Option<Issue>> {
        get(&self.issues, id)
    }

    /// The issue collecting occurrences with this aggregation key, if any.
    pub fn issue_for_key(&self, key: &str) -> Result<Option<Issue>> {
        match self.issue_keys.get(key.as_bytes())? {
            Some(id) => self.issue(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// How many issues of type `kind` are OPENED (kept as issues are saved:
    /// no scan).
    pub fn open_issues(&self, kind: IssueType) -> u64 {
        self.open_issues.count(kind)
    }

    /// Every issue, oldest first.
    pub fn issues(&self) -> impl Iterator<Item = Result<Issue>> {
        values(&self.issues)
    }

    pub fn save_issue_trigger(&self, trigger: &IssueTrigger) -> Result<()> {
        put(&self.issue_triggers, &trigger.id, trigger)
    }

    pub fn issue_trigger(&self, id: &str) -> Result<Option<IssueTrigger>> {
        get(&self.issue_triggers, id)
    }

    pub fn issue_triggers(&self) -> Result<Vec<IssueTrigger>> {
        values(&self.issue_triggers).collect()
    }

    /// Deletes a trigger and the issues it opened, as the reference does.
    pub fn delete_issue_trigger(&self, id: &str) -> Result<bool> {
        if self.issue_triggers.remove(id.as_bytes())?.is_none() {
            return Ok(false);
        }
        for issue in self.issues() {
            let issue = issue?;
            if issue.issue_trigger_id == id {
                self.open_issues.remove(&self.issues, &issue.id)?;
                self.issue_keys.remove(issue.aggregation_key.as_bytes())?;
            }
        }
        Ok(true)
    }

    pub fn notification_settings(&self) -> Result<NotificationSettings> {
        match self.meta.get(NOTIFICATION_SETTINGS)? {
            Some(bytes) => Ok(serde_json::from_slice(&bytes)?),
            None => Ok(NotificationSettings::default()),
        }
    }

    pub fn save_notification_settings(&self, settings: &NotificationSettings) -> Result<()> {
        self.meta
            .insert(NOTIFICATION_SETTINGS, serde_json::to_vec(settings)?)?;
        Ok(())
    }
}
