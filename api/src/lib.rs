//! How every HTTP API here behaves, Lookout's and the platform's alike: errors are JSON bodies
//! a person can act on, extractors reject bad input with those errors, and write APIs take a
//! bearer token compared in constant time. And the one client every reader of the collector's
//! API shares ([`client`]).
#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
pub mod discovery;
pub mod error;
pub mod metrics;
pub mod reload;
pub mod tls;

pub use error::{
    ApiBytes, ApiError, ApiFastJson, ApiFastJsonBytes, ApiJson, ApiPath, ApiQuery, ApiResult,
};
