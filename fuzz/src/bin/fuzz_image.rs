//! afl.rs entry point of the `image` target; the harness is `texaug_fuzz::image`.

fn main() {
    afl::fuzz_nohook!(|data: &[u8]| texaug_fuzz::image(data));
}
