//! afl.rs entry point of the `mesh` target; the harness is `texaug_fuzz::mesh`.

fn main() {
    afl::fuzz_nohook!(|data: &[u8]| texaug_fuzz::mesh(data));
}
