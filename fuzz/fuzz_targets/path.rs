//! Fuzz target: arbitrary bytes as a request path, checked against the shared invariants.
#![no_main]

// Each target uses one of the shared checks; the rest are for the other targets.
#[allow(dead_code)]
#[path = "../invariants.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::check_path(data));
