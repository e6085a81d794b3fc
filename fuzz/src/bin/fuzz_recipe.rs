//! afl.rs entry point of the `recipe` target; the harness is `texaug_fuzz::recipe`.

fn main() {
    afl::fuzz_nohook!(|data: &[u8]| texaug_fuzz::recipe(data));
}
