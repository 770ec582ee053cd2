#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    joinery::fuzzing::config(joinery_fuzz::fixture(), data);
});
