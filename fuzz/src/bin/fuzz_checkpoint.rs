//! afl.rs entry point of the `checkpoint` target; the harness is `texaug_fuzz::checkpoint`.

fn main() {
    afl::fuzz_nohook!(|data: &[u8]| texaug_fuzz::checkpoint(data));
}
