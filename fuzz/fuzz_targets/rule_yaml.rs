//! See `claimgate::fuzz::rule_yaml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| claimgate::fuzz::rule_yaml(data));
