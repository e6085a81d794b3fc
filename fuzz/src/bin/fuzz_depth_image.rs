//! afl.rs entry point of the `depth_image` target; the harness is `texaug_fuzz::depth_image`.

fn main() {
    afl::fuzz_nohook!(|data: &[u8]| texaug_fuzz::depth_image(data));
}
