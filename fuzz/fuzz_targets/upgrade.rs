#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rapidp2p_fuzz::upgrade(data));
