//! Lookout's shared vocabulary: types every component speaks and the SLA math.
//!
//! No I/O and no async live here, so everything in this crate can be tested exhaustively
//! and every other crate may depend on it.
#![forbid(unsafe_code)]

pub mod event;
pub mod health;
pub mod heartbeat;
pub mod latency;
pub mod probe;
pub mod read;
pub mod secret;
pub mod sla;
pub mod slo;
