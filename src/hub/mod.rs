//! Writes to the hub's status subresources, for both kinds: one way to write a status (bounded
//! in time, a deleted object not an error), and the latest-only writer that keeps a slow or
//! frozen hub away from the loops that feed it.

pub mod status;
