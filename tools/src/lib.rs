//! Clients of the outside world, and the simulated world that stands in for it.
//!
//! What this crate holds:
//! - [`http`]: the shared HTTP core (retries with backoff that honour `Retry-After`, a
//!   per-source rate limiter, body checks that never assume JSON) and [`http::SourceError`],
//!   the one error type of this boundary.
//! - [`coingecko`]: CoinGecko `simple/price`.
//! - [`toncenter`]: toncenter API v2 (`getMasterchainInfo`, `getAddressInformation`,
//!   `getWalletInformation`, `getTransactions`, `getConfigParam`, `runGetMethod` with the
//!   legacy stack encoding and typed elector get-methods, `estimateFee`, `sendBoc`).
//! - [`ton`]: TON addresses, wallet transfers (v4r2, v5r1) built and signed from a mnemonic,
//!   config params 15/17/32/34/36 and elector results decoded from cells; tonlib-core is
//!   named only here.
//! - [`prometheus`]: a tolerant Prometheus text-format parser, a scraper, and typed views of
//!   node_exporter and mytonctrl validator metrics.
//! - [`github`]: GitHub releases (latest, paged list) and release-tag version order.
//! - [`elections`]: toncenter's operator APIs: validation cycles, elections, complaints
//!   (elections.toncenter.com) and validator efficiency (the QoS `cycleScoreboard`).
//! - [`tonapi`]: tonapi.io v2 as an alternative provider: the validator set and accounts.
//! - [`secret`]: [`secret::Secret`], an API key that prints as `***`.
//! - [`slack`]: Slack request verification (v0 signatures, replay guard), slash command and
//!   `block_actions` parsing, a Web API client (`chat.postMessage`, `chat.update`,
//!   `response_url`) spaced per channel, and Socket Mode's `apps.connections.open` and
//!   envelopes ([`slack::socket`]; the WebSocket itself is `runtime::channels::slack::socket`).
//! - [`llm`]: the typed, read-only tools a language model calls: the [`llm::Tool`] trait and
//!   its object-safe twin [`llm::DynTool`] with generated JSON Schemas, the
//!   [`llm::ToolRegistry`], and [`llm::untrusted`] for text from outside.
//! - [`sim`]: the simulated world, one HTTP server that speaks the same wire formats from
//!   a scenario file, injects faults and records webhooks, for demos and tests; and
//!   [`sim::smtp`], a simulated SMTP server (STARTTLS/TLS with a generated CA, AUTH, faults)
//!   for the email receivers.
//!
//! What it must never do:
//! - No side effects beyond HTTP reads of the services, with two exceptions:
//!   [`toncenter::ToncenterClient::send_boc`], which sends a signed message once and never
//!   retries it after a connection was made, and [`slack::SlackClient`], which posts chat
//!   messages and retries one only when Slack refused it (rate limited) or nothing was
//!   sent; [`slack::socket::SocketModeOpener`] only asks for a connection URL. (The Telegram client lives with its bot in `runtime::channels::telegram`, the one
//!   place teloxide is named.) The sim is the only server here, and it only ever binds where
//!   it is told.
//! - No persistence: no sled, no files written. State lives with the caller.
//! - Never put an API key in a log line or error message; URLs are printed through
//!   [`http::redact_url`].

pub mod coingecko;
pub mod elections;
pub mod github;
pub mod http;
pub mod llm;
pub mod prometheus;
pub mod secret;
pub mod sim;
pub mod slack;
pub mod ton;
pub mod tonapi;
pub mod toncenter;

#[cfg(test)]
mod test_support;
