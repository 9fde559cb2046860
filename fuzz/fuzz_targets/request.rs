//! See `claimgate::fuzz::request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| claimgate::fuzz::request(data));
