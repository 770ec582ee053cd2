#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = joinery::fuzzing::variables(joinery_fuzz::fixture(), data);
});
