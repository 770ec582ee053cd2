#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = joinery::fuzzing::request(joinery_fuzz::fixture(), data);
});
