#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dmvpn_fuzz::nhrp_engine::check(data));
