//! Integration tests: the real HTTP server on loopback in front of the simulated gateway, and the
//! real binary for the CLI contract.

mod access;
mod cli;
mod crash;
mod helpers;
mod history;
mod office;
mod packs;
mod proxy;
mod reload;
