//! Fuzz target: arbitrary bytes through the whole reply path (parse ->
//! validate -> classify). See docs/fuzzing.md.

#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../harness/reply_path.rs");

fuzz_target!(|data: &[u8]| {
    // A fresh tracker for every input, so each run is reproducible.
    reply_path::run(reply_path::validator(), &mut None, data);
});
