#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brenier_fuzz::record(data));
