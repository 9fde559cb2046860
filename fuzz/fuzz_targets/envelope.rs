//! See `claimgate::fuzz::envelope`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| claimgate::fuzz::envelope(data));
