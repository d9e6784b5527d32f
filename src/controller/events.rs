//! Events on the hub, one per thing worth telling (a new placement, a new problem).
//!
//! Written directly rather than through kube's `Recorder`: the Recorder folds repeats of the
//! same reason into a series and keeps the first note, so a second placement within minutes
//! would show the first placement's message. Bascule records only changes, so repeats are rare
//! and each deserves its own note.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

/// The name Events carry as their reporting controller.
pub const REPORTING_CONTROLLER: &str = "bascule.dev/controller";
/// Notes are capped (the API server refuses more than 1 kB).
const MAX_NOTE: usize = 1000;

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Normal,
    Warning,
}

/// Writes Events as one reporting instance.
#[derive(Clone)]
pub struct Events {
    client: kube::Client,
    instance: String,
}

impl Events {
    pub fn new(client: kube::Client, instance: impl Into<String>) -> Events {
        Events {
            client,
            instance: instance.into(),
        }
    }

    /// Records an Event about `regarding`; failures are logged, never fatal.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        kind: Kind,
        reason: &str,
        action: &str,
        note: &str,
    ) {
        let namespace = regarding.namespace.clone().unwrap_or("default".into());
        let event = event(
            regarding,
            kind,
            reason,
            action,
            note,
            &self.instance,
            Timestamp::now(),
        );
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(error) = api.create(&PostParams::default(), &event).await {
            tracing::warn!(%error, reason, "could not record an Event");
        }
    }
}

fn event(
    regarding: &ObjectReference,
    kind: Kind,
    reason: &str,
    action: &str,
    note: &str,
    instance: &str,
    now: Timestamp,
) -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}.{:x}",
                regarding.name.as_deref().unwrap_or("bascule"),
                now.as_nanosecond()
            )),
            namespace: regarding.namespace.clone(),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some(format!("{kind:?}")),
        reason: Some(reason.to_string()),
        action: Some(action.to_string()),
        note: Some(crate::api::text::clean(note, MAX_NOTE)),
        regarding: Some(regarding.clone()),
        reporting_controller: Some(REPORTING_CONTROLLER.to_string()),
        reporting_instance: Some(instance.to_string()),
        ..Event::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_their_object_and_cap_the_note() {
        let r = ObjectReference {
            name: Some("web".into()),
            namespace: Some("shop".into()),
            ..ObjectReference::default()
        };
        let e = event(
            &r,
            Kind::Warning,
            "OwnershipConflict",
            "Sync",
            &"x".repeat(5000),
            "pod-1",
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(e.metadata.name.as_deref(), Some("web.0"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert!(e.note.as_ref().unwrap().len() <= MAX_NOTE);
    }
}
