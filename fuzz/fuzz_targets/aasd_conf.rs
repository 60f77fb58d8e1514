#![no_main]
// The checks live in the library (src/fuzz.rs) so that tests/fuzz_corpus.rs
// replays every kept input on stable Rust.
libfuzzer_sys::fuzz_target!(|data: &[u8]| indhcpd::fuzz::aasd_conf(data));
