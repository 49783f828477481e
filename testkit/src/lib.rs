//! What Lookout's tests share, so each helper exists once: a port no other test holds, a child
//! process that dies with the test and shows its log when the test fails, waiting for a
//! condition, the real peers the suite talks to, a network namespace of its own, and probe
//! results built by name.
//!
//! Tests panic on what they did not expect; so does the kit, with a message that says what to
//! install or what did not happen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod child;
pub mod collector;
pub mod http;
pub mod netns;
pub mod peers;
pub mod pki;
pub mod port;
pub mod results;
pub mod target;
pub mod wait;

pub use child::Guard;
pub use port::free_port;
pub use wait::{eventually, wait_for, wait_until, within};
