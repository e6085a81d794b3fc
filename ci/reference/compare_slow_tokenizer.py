"""Compare tests/fixtures/tokenizer/prompts.json with transformers 4.x's slow (pure Python) CLIPTokenizer.

transformers 5 removed the slow CLIP tokenizer, so this runs in a separate environment with
`transformers<5` (and optionally `ftfy`, which changes the slow tokenizer's text cleaning):

    python -m venv /tmp/tf4 && /tmp/tf4/bin/pip install 'transformers==4.57.3' ftfy
    /tmp/tf4/bin/python ci/reference/compare_slow_tokenizer.py tests/fixtures/tokenizer/prompts.json

It prints, per variant (ftfy / no ftfy / fast), how many prompts give identical ids and lists the others.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import find_bpe_gz, read_merges, write_bpe_files  # noqa: E402


def main() -> None:
    import transformers
    from transformers import CLIPTokenizer, CLIPTokenizerFast
    from transformers.models.bert.tokenization_bert import BasicTokenizer

    rows = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as td:
        v, m = write_bpe_files(Path(td), read_merges(find_bpe_gz()))
        variants = {}
        for pad, key in (("<|endoftext|>", "ids_eos_pad"), ("!", "ids_bang_pad")):
            slow = CLIPTokenizer(str(v), str(m), pad_token=pad)
            slow_noftfy = CLIPTokenizer(str(v), str(m), pad_token=pad)
            slow_noftfy.fix_text = None
            slow_noftfy.nlp = BasicTokenizer(strip_accents=False, do_split_on_punc=False)
            fast = CLIPTokenizerFast(vocab_file=str(v), merges_file=str(m), pad_token=pad)
            for name, tok in (("slow_ftfy", slow), ("slow_no_ftfy", slow_noftfy), ("fast_v4", fast)):
                bad = []
                for r in rows:
                    ids = tok(r["prompt"], padding="max_length", max_length=77, truncation=True).input_ids
                    if ids != r[key]:
                        bad.append(r["prompt"])
                variants[(name, key)] = bad
    print("transformers", transformers.__version__, "ftfy available:", slow.fix_text is not None)
    for (name, key), bad in variants.items():
        print(f"{name:13s} {key:13s} identical {len(rows) - len(bad)}/{len(rows)}")
        for p in bad:
            print("    differs:", json.dumps(p, ensure_ascii=False)[:100])


if __name__ == "__main__":
    main()
