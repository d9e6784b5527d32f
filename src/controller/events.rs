//! Events on the hub, one per thing worth telling (a new placement, a new problem).
//!
//! Written directly rather than through kube's `Recorder`: the Recorder folds repeats of the
//! same reason into a series and keeps the first note, so a second placement within minutes
//! would show the first placement's message. Bascule records only changes, so repeats are rare
//! and each deserves its own note.
//!
//! Repeats of the very same Event (same object, type, reason and note) within
//! [`AGGREGATION_WINDOW`] — a reconcile retried after a failed status write tells the same news
//! again — are aggregated instead: the first Event's `series` counts them, no new Event is made.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};

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

/// Identical Events within this window are counted on the first one instead of made anew.
pub const AGGREGATION_WINDOW: Duration = Duration::from_secs(600);

/// Writes Events as one reporting instance.
#[derive(Clone)]
pub struct Events {
    client: kube::Client,
    instance: String,
    recent: Arc<Mutex<Recent>>,
}

/// The Events made within the window, by what they say.
#[derive(Default)]
pub struct Recent {
    seen: HashMap<u64, Made>,
}

struct Made {
    name: String,
    first: Instant,
    count: i32,
}

/// What to do with an Event about to be written.
#[derive(Debug, PartialEq, Eq)]
pub enum Correlation {
    /// Write it.
    New,
    /// The same was written as `name` within the window; this is repeat number `count` (2 on the
    /// first repeat).
    Repeat { name: String, count: i32 },
}

impl Recent {
    /// Whether the Event with this key is new, given what was made within the window before
    /// `now`. Entries older than the window are dropped.
    pub fn correlate(&mut self, key: u64, now: Instant) -> Correlation {
        self.seen
            .retain(|_, m| now.duration_since(m.first) < AGGREGATION_WINDOW);
        match self.seen.get_mut(&key) {
            Some(m) => {
                m.count = m.count.saturating_add(1);
                Correlation::Repeat {
                    name: m.name.clone(),
                    count: m.count,
                }
            }
            None => Correlation::New,
        }
    }

    /// Records that the Event with this key was made as `name`.
    pub fn made(&mut self, key: u64, name: String, now: Instant) {
        self.seen.insert(
            key,
            Made {
                name,
                first: now,
                count: 1,
            },
        );
    }
}

/// What makes two Events the same: the object, type, reason and note.
fn key(regarding: &ObjectReference, kind: Kind, reason: &str, note: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        &regarding.uid,
        &regarding.namespace,
        &regarding.name,
        kind as u8,
        reason,
        note,
    )
        .hash(&mut h);
    h.finish()
}

impl Events {
    pub fn new(client: kube::Client, instance: impl Into<String>) -> Events {
        Events {
            client,
            instance: instance.into(),
            recent: Arc::default(),
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
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let key = key(regarding, kind, reason, note);
        let correlation = self
            .recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .correlate(key, Instant::now());
        if let Correlation::Repeat { name, count } = correlation {
            let series = serde_json::json!({"series": {
                "count": count,
                "lastObservedTime": MicroTime(Timestamp::now()),
            }});
            if let Err(error) = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&series))
                .await
            {
                tracing::debug!(%error, reason, "could not count a repeated Event");
            }
            return;
        }
        let event = event(
            regarding,
            kind,
            reason,
            action,
            note,
            &self.instance,
            Timestamp::now(),
        );
        match api.create(&PostParams::default(), &event).await {
            Ok(made) => self.recent.lock().unwrap_or_else(|p| p.into_inner()).made(
                key,
                made.metadata.name.unwrap_or_default(),
                Instant::now(),
            ),
            Err(error) => tracing::warn!(%error, reason, "could not record an Event"),
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

    /// A repeat within the window is counted on the first Event; after the window, or with a
    /// different note, a new Event is made.
    #[test]
    fn repeats_are_aggregated_within_the_window() {
        let r = ObjectReference {
            name: Some("web".into()),
            namespace: Some("shop".into()),
            uid: Some("u1".into()),
            ..ObjectReference::default()
        };
        let same = key(&r, Kind::Warning, "SyncFailed", "eks-use1: 503");
        let other = key(&r, Kind::Warning, "SyncFailed", "eks-use1: 504");
        assert_ne!(same, other);
        let t0 = Instant::now();
        let mut recent = Recent::default();
        assert_eq!(recent.correlate(same, t0), Correlation::New);
        recent.made(same, "web.1".into(), t0);
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(
            recent.correlate(same, t1),
            Correlation::Repeat {
                name: "web.1".into(),
                count: 2
            }
        );
        assert_eq!(
            recent.correlate(same, t1),
            Correlation::Repeat {
                name: "web.1".into(),
                count: 3
            }
        );
        assert_eq!(recent.correlate(other, t1), Correlation::New);
        let later = t0 + AGGREGATION_WINDOW + Duration::from_secs(1);
        assert_eq!(
            recent.correlate(same, later),
            Correlation::New,
            "the window has passed"
        );
    }
}
