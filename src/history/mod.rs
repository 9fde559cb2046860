//! Patient history: what claimgate learnt from the exchanges it saw.
//!
//! This session's store is the in-memory visit context (`context`): person facts from 1101 answers,
//! visit facts from 2201/2203/2401/2402, and accepted fee lines. It is bounded (moka) and lost on
//! restart; the durable SQLite/PostgreSQL stores of the history issue replace it behind the same
//! [`crate::claim::Facts`] trait.
//!
//! Architecture Invariant: history never sees rule internals; rules see history only through `Facts`.

pub mod context;

pub use context::ContextStore;
