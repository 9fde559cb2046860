//! claimgate: a pre-settlement claim interceptor between a hospital HIS and the national
//! medical-insurance settlement gateway (医保前置机 / 医保平台).
//!
//! # Layout
//! - [`wire`]: the national envelope and transaction bodies (the only module that knows JSON field names).
//! - [`claim`]: the normalised claim model (money as integer fen, dates as service dates).
//! - [`rules`]: rule packs — source format, compile to an indexed form, evaluate, explain.
//! - [`history`]: what claimgate learnt from earlier exchanges (visit context).
//! - [`cds`]: the HL7 CDS Hooks 2.0 service (a hook call is evaluated as the 3101 it becomes; cards, feedback as 3103).
//! - [`pipeline`]: parse → normalise → evaluate for one message, without HTTP; the pack test runner.
//! - [`reload`]: signed rule bundles, activation, last-known-good, rollback, local watch.
//! - [`gate`]: the HTTP server (proxy route, check API, admin API).
//! - [`journal`]: the decision journal and the office's statistics queries.
//! - [`report`]: the office's figures rendered as HTML, CSV and JSON (`/office`, `claimgate report`).
//! - [`sim`]: the simulated settlement gateway.
//! - [`startup`]: from a configuration to a bound, running server.
//! - [`store`]: the storage engines history and the journal stand on (SQLite, PostgreSQL), key files, pseudonymisation.
//! - [`telemetry`]: tracing, metrics, masking of personal data.
//! - `fuzz`: the fuzz targets' entry points (`fuzz/`), replayed by the tests.

#![forbid(unsafe_code)]

pub mod cds;
pub mod claim;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
#[doc(hidden)]
pub mod fuzz;
pub mod gate;
pub mod gen;
pub mod history;
pub mod journal;
pub mod nhsa;
pub mod pipeline;
pub mod reload;
pub mod replay;
pub mod report;
pub mod rules;
pub mod sim;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod wire;
