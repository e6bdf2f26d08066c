#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dmvpn_fuzz::forwarder::check(data));
