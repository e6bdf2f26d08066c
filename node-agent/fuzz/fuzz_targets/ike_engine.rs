#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dmvpn_fuzz::ike_engine::check(data));
