"""Tokenizer fixtures: prompts and the ids transformers' CLIPTokenizer gives for them."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from common import find_bpe_gz, read_merges, write_bpe_files

BASE_PROMPTS = [
    "",
    " ",
    "a photo of a cat",
    "A Photo Of A CAT",
    "a photograph of an astronaut riding a horse",
    "a mug carved from oak, highly detailed, 8k",
    "a wooden chair with tattoo patterns",
    "oil painting of a lighthouse at dusk, trending on artstation",
    "portrait of a woman, by greg rutkowski and alphonse mucha",
    "cyberpunk city street at night, neon lights, rain, reflections",
    "a red apple on a blue table",
    "red apple blue table",
    "the quick brown fox jumps over the lazy dog",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
    "pi is 3.14 and e is 2.71828",
    "1,000 balloons over 10,000 houses",
    "1000000",
    "12345678901234567890",
    "0.5x zoom, f/1.8, 35mm, ISO 100",
    "version 2.0.1-beta+build.5",
    "it's a dog's life",
    "don't stop, won't stop, can't stop",
    "they're here and we're there and you're everywhere",
    "I've been, I'm here, I'll go, I'd say",
    "IT'S LOUD, DON'T YELL",
    "rock 'n' roll",
    "it’s a curly apostrophe",
    "'s 't 're 've 'm 'll 'd",
    "café crème brûlée",
    "naïve façade, jalapeño, piñata",
    "Ångström Øre Æther œuvre",
    "straße in München",
    "Ελληνικά γράμματα",
    "русский текст, кошка на крыше",
    "עברית מימין לשמאל",
    "العربية قطة",
    "हिन्दी बिल्ली",
    "ภาษาไทย แมว",
    "日本語の猫の写真",
    "一只可爱的猫",
    "中文 English 混合 mixed",
    "한국어 고양이 사진",
    "カタカナ ひらがな 漢字",
    "a cat 🐱 and a dog 🐶",
    "🔥🔥🔥 fire 🔥",
    "👨‍👩‍👧‍👦 family emoji with zero width joiners",
    "flag 🇫🇷 and 🇯🇵",
    "thumbs up 👍🏽 skin tone",
    "✨ sparkles ✨ ★ stars ☆",
    "math: ∑ ∫ √ ∞ ≠ ≤ ≥ ± × ÷",
    "arrows → ← ↑ ↓ ⇒",
    "currency $100 €50 £30 ¥2000 ₹10",
    "100% cotton, 50°C, 5'11\"",
    "hello, world!",
    "hello,world!",
    "wait... what?!",
    "!!!???...,,,;;;:::",
    "(masterpiece:1.2), ((best quality)), [blurry]",
    "{curly} <angle> [square] (round)",
    "a|b|c",
    "path/to/file.png",
    "https://example.com/a?b=c&d=e",
    "user@example.com",
    "#hashtag @mention",
    "snake_case_words and kebab-case-words",
    "CamelCaseWordsTogether",
    "under_score __double__",
    "tom &amp; jerry",
    "&lt;b&gt;bold&lt;/b&gt;",
    "&quot;quoted&quot; &#39;single&#39; &nbsp; &copy;",
    "<b>html tags</b> <br/>",
    "a  double  space",
    "many     spaces     between",
    "   leading and trailing spaces   ",
    "tab\tseparated\tvalues",
    "line one\nline two\nline three",
    "windows\r\nnewlines\r\n",
    "mixed \t\n whitespace \n\t here",
    "\n\nonly newlines around\n\n",
    "\u00a0non-breaking\u00a0space",
    "zero\u200bwidth\u200bspace",
    "combining e\u0301 versus é",
    "ﬁ ligature and ｆｕｌｌｗｉｄｔｈ letters",
    "Ⅻ roman numeral and ½ fraction and ² superscript",
    "٣ arabic-indic digit and ३ devanagari digit",
    "<|startoftext|> literal special token",
    "text with <|endoftext|> inside",
    "<|endoftext|><|endoftext|>",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "supercalifragilisticexpialidocious",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "x",
    "X",
    "9",
    "!",
    ".",
    "'",
    "'s",
    "a",
    "in on at by for with from",
    "ultra realistic, octane render, unreal engine 5, volumetric lighting, 4k, hdr",
    "low quality, worst quality, blurry, jpeg artifacts, watermark, signature, text",
    "ugly, deformed, disfigured, extra limbs, bad anatomy",
]

LONG_PROMPTS = [
    ", ".join(["a very detailed intricate ornate golden filigree pattern"] * 12),
    " ".join(str(i) for i in range(120)),
    "word " * 100,
    "🐱" * 80,
    "猫" * 90,
    "a photo of " + "very " * 70 + "big cat",
    "masterpiece, best quality, " * 20,
    ("highly detailed portrait of a knight in shining armor standing in a misty forest at dawn, "
     "dramatic lighting, volumetric fog, cinematic composition, sharp focus, intricate details, "
     "concept art, digital painting, by several famous artists, trending on artstation, 8k resolution, "
     "ultra wide angle, depth of field, bokeh, award winning photograph"),
    "x" * 400,
    "1,000 " * 40,
    "it's " * 80,
]

SUBJECTS = ["mug", "chair", "vase", "teapot", "helmet", "sneaker", "lamp", "bottle", "guitar", "robot"]
STYLES = [
    "carved from oak",
    "made of rusty metal",
    "with Japanese wave patterns",
    "covered in moss",
    "in the style of Van Gogh",
    "glazed ceramic, glossy",
    "low-poly, flat shading",
    "art deco gold & black",
    "graffiti-covered (street art)",
    "marble with gold veins; photoreal",
    "stained glass — vivid colours",
    "pastel kawaii 可愛い style",
]


def prompts() -> list[str]:
    out = list(BASE_PROMPTS) + list(LONG_PROMPTS)
    i = 0
    for s in SUBJECTS:
        for st in STYLES:
            # Vary casing and punctuation deterministically so the combinations are not all alike.
            p = f"a {s} {st}"
            if i % 3 == 1:
                p = p.upper()
            elif i % 3 == 2:
                p = p.title() + "!!"
            if i % 5 == 0:
                p = p + ", 4k"
            out.append(p)
            i += 1
    seen = set()
    uniq = []
    for p in out:
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    return uniq


def make_full_tokenizer(pad_token: str, tmp: Path):
    from transformers import CLIPTokenizer

    merges = read_merges(find_bpe_gz())
    vocab_path, merges_path = write_bpe_files(tmp, merges)
    tok = CLIPTokenizer(vocab=str(vocab_path), merges=str(merges_path), pad_token=pad_token)
    return tok, vocab_path, merges_path


def load_tokenizer_from_files(vocab_path: Path, merges_path: Path, pad_token: str):
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab=str(vocab_path), merges=str(merges_path), pad_token=pad_token)


def encode(tok, prompt: str) -> list[int]:
    ids = tok(prompt, padding="max_length", max_length=77, truncation=True).input_ids
    assert len(ids) == 77
    return [int(i) for i in ids]


def generate(out: Path) -> dict:
    tok_dir = out / "tokenizer"
    tok_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as td:
        merges = read_merges(find_bpe_gz())
        vocab_path, merges_path = write_bpe_files(Path(td), merges)
        tok_eos = load_tokenizer_from_files(vocab_path, merges_path, "<|endoftext|>")
        tok_bang = load_tokenizer_from_files(vocab_path, merges_path, "!")
        assert len(tok_eos) == 49408, len(tok_eos)
        assert tok_eos.convert_tokens_to_ids("<|startoftext|>") == 49406
        assert tok_eos.convert_tokens_to_ids("<|endoftext|>") == 49407
        assert tok_bang.pad_token_id == 0
        rows = []
        for p in prompts():
            rows.append({"prompt": p, "ids_eos_pad": encode(tok_eos, p), "ids_bang_pad": encode(tok_bang, p)})
    assert len(rows) >= 220, len(rows)
    # One row per line: readable diffs, and 3x smaller than an indented dump.
    text = "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n"
    (tok_dir / "prompts.json").write_text(text, encoding="utf-8")
    return {"count": len(rows), "vocab_size": 49408, "tokenizer_class": type(tok_eos).__name__}


if __name__ == "__main__":
    import sys

    print(generate(Path(sys.argv[1])))
