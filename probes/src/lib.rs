//! Lookout's eyes: checks (journeys of HTTP requests with captures and assertions, TCP
//! exchanges, ...), run like a user would, timed phase by phase, by agents placed in regions,
//! reporting every result to the collector.
#![forbid(unsafe_code)]

pub mod agent;
pub mod assert;
pub mod capture;
pub mod check;
pub mod config;
pub mod http;
pub mod journey;
pub mod kind;
pub mod schedule;
pub mod template;
