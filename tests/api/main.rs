//! Integration tests: the real HTTP server on loopback in front of the simulated gateway, and the
//! real binary for the CLI contract.

mod access;
mod cds;
mod cli;
mod crash;
mod faults;
mod fuzzed;
mod helpers;
mod history;
mod hostile;
mod month;
mod office;
mod ops;
mod packs;
mod props;
mod proxy;
mod reload;
