//! afl.rs entry point of the `manifest_csv` target; the harness is `texaug_fuzz::manifest_csv`.

fn main() {
    afl::fuzz_nohook!(|data: &[u8]| texaug_fuzz::manifest_csv(data));
}
