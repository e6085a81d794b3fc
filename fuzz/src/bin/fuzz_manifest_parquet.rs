//! afl.rs entry point of the `manifest_parquet` target; the harness is `texaug_fuzz::manifest_parquet`.

fn main() {
    afl::fuzz_nohook!(|data: &[u8]| texaug_fuzz::manifest_parquet(data));
}
