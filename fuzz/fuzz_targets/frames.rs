//! Raw bytes as what the peer sends on a WebSocket. The first two bytes choose how we
//! read (role, limits, buffer sizes); the rest is the stream. wsp reads a greeting, then
//! heads and bodies as a connection does, and must neither panic, nor hang, nor allocate
//! past its limits (libFuzzer's RSS and malloc limits catch that), whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsp::protocol::Role;
use wsp_fuzz::drive::{self, Plan};

const TEXT_LIMITS: [usize; 4] = [0, 16, 300, 1 << 20];
const CHUNKS: [usize; 4] = [1, 7, 64, 16384];
const BUDGETS: [usize; 4] = [0, 5, 100, usize::MAX];

fuzz_target!(|data: &[u8]| {
    let &[how, sizes, ref stream @ ..] = data else {
        return;
    };
    let plan = Plan {
        role: if how & 1 == 0 {
            Role::Server
        } else {
            Role::Client
        },
        check_idle_first: how & 2 != 0,
        text_limit: TEXT_LIMITS[usize::from(how >> 2) % 4],
        chunk: CHUNKS[usize::from(sizes) % 4],
        body_budget: BUDGETS[usize::from(sizes >> 2) % 4],
        skip_limit: [0, 10, 1000, u64::MAX][usize::from(sizes >> 4) % 4],
        exchanges: 16,
    };
    let _ = drive::run(stream.to_vec(), &plan);
});
