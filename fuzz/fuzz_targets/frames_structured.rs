//! Frame sequences built from the fuzzer's bytes with `arbitrary`: whole messages in
//! fragments with control frames between them, then anything frame-shaped. Valid headers
//! get the fuzzer deep into body streaming at once, and the model says what each read
//! must give, so wrong bytes, lost frames or a missing pong fail too, not only panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsp_fuzz::drive;
use wsp_fuzz::model::{self, Script};

fuzz_target!(|script: Script| {
    let plan = script.plan();
    let (input, model) = script.encode();
    let run = drive::run(input, &plan);
    model::check(&script, &plan, model, &run);
});
