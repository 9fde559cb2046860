//! See `claimgate::fuzz::transaction`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| claimgate::fuzz::transaction(data));
