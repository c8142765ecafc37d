//! Clients of the outside world, and the simulated world that stands in for it.
//!
//! What this crate holds:
//! - [`http`]: the shared HTTP core (retries with backoff that honour `Retry-After`, a
//!   per-source rate limiter, body checks that never assume JSON) and [`http::SourceError`],
//!   the one error type of this boundary.
//! - [`coingecko`]: CoinGecko `simple/price`.
//! - [`toncenter`]: toncenter API v2 (`getMasterchainInfo`, `getAddressInformation`).
//! - [`ton`]: TON addresses, and wallet transfers (v4r2, v5r1) built and signed from a
//!   mnemonic with tonlib-core; the only module that names it.
//! - [`secret`]: [`secret::Secret`], an API key that prints as `***`.
//! - [`sim`]: the simulated world, one HTTP server that speaks the same wire formats from
//!   a scenario file, injects faults and records webhooks, for demos and tests.
//!
//! What it must never do:
//! - No side effects beyond HTTP reads of the services, with one exception:
//!   [`toncenter::ToncenterClient::send_boc`], which sends a signed message once and never
//!   retries it after a connection was made. The sim is the only server here, and it only
//!   ever binds where it is told.
//! - No persistence: no sled, no files written. State lives with the caller.
//! - Never put an API key in a log line or error message; URLs are printed through
//!   [`http::redact_url`].

pub mod coingecko;
pub mod http;
pub mod secret;
pub mod sim;
pub mod ton;
pub mod toncenter;

#[cfg(test)]
mod test_support;
