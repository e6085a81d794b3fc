//! afl.rs entry point of the `manifest_jsonl` target; the harness is `texaug_fuzz::manifest_jsonl`.

fn main() {
    afl::fuzz_nohook!(|data: &[u8]| texaug_fuzz::manifest_jsonl(data));
}
