//! A strict, stateful simulator of Cloudflare's Workers-for-Platforms
//! static-assets API, for tests and for developers who want to deploy
//! without a Cloudflare account.
//!
//! It serves the three calls of the flow (upload session, assets upload,
//! script upload) under `/client/v4`, and a test API under `/__sim`. It is
//! deliberately stricter than a lenient mock: whatever the real API would
//! refuse, it refuses too, with Cloudflare's envelope and error codes. It
//! shares no types with [`crate::cloudflare`] (nor any other crate module),
//! so a bug in the client cannot hide a bug here.
//!
//! # Error codes
//!
//! | HTTP | code   | when |
//! |------|--------|------|
//! | 400  | 10021  | body, query, multipart part or metadata is invalid (message names the path, hash, part or key), a part whose bytes do not hash to its name under the configured scheme; completion JWT for another script |
//! | 400  | 10016  | script name is not 1-63 of `[a-z0-9_-]` without a leading or trailing `-` |
//! | 401  | 10000  | missing, malformed or unknown credential; a JWT where an API token is needed or the reverse; upload JWT expired (`upload JWT expired`) or for another account; `assets.jwt: expired` / `assets.jwt: invalid` |
//! | 403  | 10000  | account not among `--account` |
//! | 404  | 7003   | account id not 32 lowercase hex (`Could not route to /accounts/...`); any path the API does not serve |
//! | 404  | 100119 | dispatch namespace not found (not among `--namespace`, or not a valid name) |
//! | 405  | 7001   | a served path with the wrong method |
//! | 400  | 100324 | `assets.config._headers` / `_redirects` content Cloudflare cannot use: a syntax error, over a limit (100 header rules, 2,000 characters a header line; 2,000 static / 100 dynamic redirects, 1,000 characters a redirect), a bad status, an infinite-loop rewrite, a duplicate source; the message lists each bad line (`Invalid _redirects configuration:\nLine 3: ...`). Cloudflare answers so today (wrangler output in workers-sdk issues 14547, 15624); older reports show these messages under 10021. A non-string value is 10021 |
//! | 413  | 10021  | a multipart body over 256 MiB, a session body over 64 MiB |
//! | 429  | 971    | injected rate limit, or a token over its `--rate-limit` budget (`More than N requests per W seconds reached. Please wait and consider throttling your request speed`), with `Retry-After` |
//! | 4xx/5xx | 10013 | injected status fault (`simulated fault: HTTP 503`), with `Retry-After` if the rule sets one |
//!
//! Checks run in this order: the rate-limit budget, faults, account id shape, credential, account
//! access, namespace, script name, then the body (for uploads: account id
//! shape, upload JWT, `base64=true`, then the parts).
//!
//! # Semantics worth knowing
//!
//! - Files are stored per (account, namespace), keyed by hash; a session asks
//!   only for hashes not stored yet, and is complete once it has received
//!   every hash it asked for (another session's upload does not count).
//! - Each uploaded part must decode to the manifest's size and hash to its
//!   name under the scheme the worker uses (`--hash-scheme`, `--tenant-key`,
//!   `--hash-secret`; `hashing.rs` gives the definition). The simulator
//!   knows the session's manifest, so the paths (hence extensions) behind
//!   each hash, and the upload JWT names the account, namespace and script:
//!   `content`, and `salted` with a `script`, `account` or `none` salt
//!   (keyed or not), are recomputed for every path carrying the hash. A
//!   `label:<name>` salt cannot be: the label's value stays in the job and
//!   never reaches Cloudflare, so such parts are checked for size only.
//! - An upload request is checked whole before anything is stored.
//! - An upload part may omit Content-Type, as in Cloudflare's own
//!   `curl -F "<hash>=<base64>"` example; such an asset has no media type
//!   and `/__sim` serves it as `application/octet-stream`. A Content-Type
//!   that is sent must be a valid media type.
//! - A session is pruned once every JWT issued for it (its upload JWT and
//!   any completion JWT) has expired by the sim clock; pruning runs when a
//!   session is created. Requests with those JWTs fail as expired anyway.
//! - A completion JWT may be used more than once until it expires, so a
//!   client retrying a PUT whose answer was lost succeeds.
//! - `keep_assets: true` without `assets.jwt` keeps the live assets.
//! - `_headers` and `_redirects` belong to the upload that sent them: one
//!   without them (a `keep_assets` upload included) deploys none.
//! - `stats.files_uploaded` counts accepted parts, re-uploads included;
//!   `stats.sessions` counts sessions created, `stats.live_sessions` those
//!   not pruned yet.
//!
//! # Fault rules
//!
//! On the command line, `--fault ENDPOINT:KIND[:OPTION...]`:
//! `ENDPOINT` is `session`, `upload`, `script` or `all`; `KIND` is a status
//! (`503`; `429` always carries `Retry-After`, default 1 s), `reset`,
//! `latency=200ms` or `advance-clock=1h`; options are `count=N`, `rate=P`,
//! `seed=N` (with rate) and `retry-after=SECONDS` (status kinds). Without
//! count or rate a rule fires on every request. At run time,
//! `POST /__sim/faults` takes the same rule as JSON:
//! `{"endpoint", "kind": "status"|"429"|"reset"|"latency"|"advance_clock",
//! "status", "retry_after", "ms", "seconds", "count", "rate", "seed"}`.
//!
//! # Rate limit
//!
//! `--rate-limit N/WINDOW` (e.g. `1200/300s`, Cloudflare's; off by default)
//! gives each API token a budget of fixed windows, reported on every answer
//! in the `Ratelimit` and `Ratelimit-Policy` headers; going over blocks the
//! token for `--rate-limit-penalty` (5 min). Uploads count against the
//! token of their account. Details in `budget/`.
//!
//! # Test API (`/__sim`, plain JSON, no auth)
//!
//! `GET health`, `GET stats` (with `rate_limit.over_budget`), `GET|DELETE requests` (last 10,000 API calls),
//! `GET clock`, `POST clock/advance {"seconds": N}`, `GET|POST|DELETE faults`,
//! `GET scripts/{account}/{namespace}/{script}` (live deployment, with
//! `special_files`: each of `_headers` / `_redirects` as `{"text", ...rule
//! counts}` or `null`), and under
//! it `assets/{*path}` and `modules/{*name}` for the stored bytes.

mod admin;
mod auth;
mod budget;
mod config;
mod envelope;
mod faults;
mod hashing;
mod jwt;
mod metadata;
mod metrics;
mod script;
mod server;
mod session;
mod special_files;
mod state;
mod strict_json;
mod upload;
mod validate;

pub use budget::{RateLimit, RateLimitConfig, parse_rate_limit};
pub use config::SimConfig;
pub use faults::{Endpoint, FaultAction, FaultSpec, Trigger};
pub use hashing::{SimHashing, SimTenantKey};
pub use server::{SimServer, run};
