//! See `claimgate::fuzz::bundle`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| claimgate::fuzz::bundle(data));
