//! CLIP byte-level BPE, token for token the same as transformers' `CLIPTokenizer`: NFC, whitespace runs to
//! one space, lower case, CLIP's split pattern, byte-level symbols, BPE with `</w>` word ends, then
//! `<|startoftext|> … <|endoftext|>` padded to 77 with the model's pad token.
//!
//! Three sources give the same tokenizer: a diffusers `tokenizer/` folder (`vocab.json` + `merges.txt`, or
//! `tokenizer.json`) and open_clip's `bpe_simple_vocab_16e6.txt.gz` (from which the vocabulary is built the
//! way CLIP built it).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use unicode_normalization::UnicodeNormalization;

pub const BOS: &str = "<|startoftext|>";
pub const EOS: &str = "<|endoftext|>";
/// The text encoders of SD 1.x and 2.x all see 77 positions.
pub const MAX_LENGTH: usize = 77;
/// CLIP's merge list keeps 49152 - 256 - 2 merges (the vocabulary is 49408 with the byte tokens and specials).
const CLIP_MERGES: usize = 49152 - 256 - 2;

/// CLIP's pre-tokenizer pattern (the text is already lower-cased, so no case-insensitive flag is needed).
const CLIP_PATTERN: &str =
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";
/// transformers chains a byte-level pre-tokenizer after CLIP's split, and that one splits again with GPT-2's
/// pattern. CLIP's pieces hold no whitespace, so the whitespace alternatives (and their look-ahead) never fire.
const GPT2_PATTERN: &str = r"'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+";

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error(
        "cannot read tokenizer file {path}: {source}; check that the model folder is complete"
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "tokenizer file {path} is malformed: {reason}; re-download the model's tokenizer/ folder"
    )]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "no tokenizer in {dir}: expected vocab.json + merges.txt or tokenizer.json; \
         copy the model's tokenizer/ folder there"
    )]
    NotFound { dir: PathBuf },
    #[error("special token {token:?} is not in the vocabulary of {path}; the tokenizer files do not belong to CLIP")]
    MissingSpecial { token: String, path: PathBuf },
}

/// A CLIP tokenizer. `Sync`: the BPE cache sits behind a mutex.
pub struct ClipTokenizer {
    encoder: HashMap<String, i64>,
    ranks: HashMap<(String, String), usize>,
    byte_symbols: [char; 256],
    clip_split: regex::Regex,
    gpt2_split: regex::Regex,
    cache: Mutex<HashMap<String, Vec<i64>>>,
    bos_id: i64,
    eos_id: i64,
    pad_id: i64,
    /// Tokens matched verbatim in the text: `<|startoftext|>`, `<|endoftext|>` and the pad token.
    specials: Vec<(String, i64)>,
    max_length: usize,
}

/// GPT-2's reversible map from bytes to printable characters (printable Latin-1 maps to itself, the rest to
/// U+0100 onward in byte order). The order of the returned pairs is the order CLIP's vocabulary lists them.
fn bytes_to_unicode() -> Vec<(u8, char)> {
    let mut printable: Vec<u32> = (u32::from('!')..=u32::from('~')).collect();
    printable.extend(u32::from('¡')..=u32::from('¬'));
    printable.extend(u32::from('®')..=u32::from('ÿ'));
    let mut pairs: Vec<(u8, char)> = printable
        .iter()
        .map(|&b| (b as u8, char::from_u32(b).unwrap_or('?')))
        .collect();
    let mut n = 0u32;
    for b in 0u32..256 {
        if !printable.contains(&b) {
            pairs.push((b as u8, char::from_u32(256 + n).unwrap_or('?')));
            n += 1;
        }
    }
    pairs
}

fn read_text(path: &Path) -> Result<String, TokenizerError> {
    std::fs::read_to_string(path).map_err(|source| TokenizerError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn malformed(path: &Path, reason: impl Into<String>) -> TokenizerError {
    TokenizerError::Malformed {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads a token given as a string or as `{"content": ...}` (both appear in tokenizer_config.json files).
fn token_field(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(m) => {
            m.get("content").and_then(|c| c.as_str()).map(str::to_owned)
        }
        _ => None,
    }
}

fn parse_merge_lines(text: &str, path: &Path) -> Result<Vec<(String, String)>, TokenizerError> {
    let mut merges = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if (i == 0 && line.starts_with("#version")) || line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) => merges.push((a.to_owned(), b.to_owned())),
            _ => {
                return Err(malformed(
                    path,
                    format!(
                        "line {}: a merge is two symbols separated by one space, found {line:?}",
                        i + 1
                    ),
                ))
            }
        }
    }
    Ok(merges)
}

impl ClipTokenizer {
    fn build(
        encoder: HashMap<String, i64>,
        merges: Vec<(String, String)>,
        pad_token: &str,
        max_length: usize,
        path: &Path,
    ) -> Result<Self, TokenizerError> {
        let id = |t: &str| {
            encoder
                .get(t)
                .copied()
                .ok_or_else(|| TokenizerError::MissingSpecial {
                    token: t.to_owned(),
                    path: path.to_path_buf(),
                })
        };
        let (bos_id, eos_id, pad_id) = (id(BOS)?, id(EOS)?, id(pad_token)?);
        let mut byte_symbols = ['?'; 256];
        for (b, c) in bytes_to_unicode() {
            byte_symbols[b as usize] = c;
        }
        let ranks = merges
            .into_iter()
            .enumerate()
            .map(|(r, m)| (m, r))
            .collect();
        Ok(Self {
            encoder,
            ranks,
            byte_symbols,
            clip_split: regex::Regex::new(CLIP_PATTERN)
                .map_err(|e| malformed(path, e.to_string()))?,
            gpt2_split: regex::Regex::new(GPT2_PATTERN)
                .map_err(|e| malformed(path, e.to_string()))?,
            cache: Mutex::new(HashMap::new()),
            bos_id,
            eos_id,
            pad_id,
            specials: {
                let mut v = vec![(BOS.to_owned(), bos_id), (EOS.to_owned(), eos_id)];
                if pad_token != BOS && pad_token != EOS && !pad_token.is_empty() {
                    v.push((pad_token.to_owned(), pad_id));
                }
                v
            },
            max_length,
        })
    }

    /// Builds CLIP's vocabulary from open_clip's gzipped merge list: the 256 byte symbols, the same with
    /// `</w>`, one token per merge, then the two specials. Pads with `<|endoftext|>` as SD 1.x does.
    pub fn from_bpe_gz(path: &Path) -> Result<Self, TokenizerError> {
        Self::from_bpe_gz_with_pad(path, EOS)
    }

    /// As [`Self::from_bpe_gz`] with another pad token (SD 2.x pads with `!`).
    pub fn from_bpe_gz_with_pad(path: &Path, pad_token: &str) -> Result<Self, TokenizerError> {
        Self::from_bpe_gz_truncated(path, CLIP_MERGES, pad_token)
    }

    /// CLIP's vocabulary built from only its first `merges` merges (ids: 512 byte tokens, the merges, then the
    /// two specials), for tiny test models whose embedding table must stay small.
    pub fn from_bpe_gz_truncated(
        path: &Path,
        merges: usize,
        pad_token: &str,
    ) -> Result<Self, TokenizerError> {
        let (encoder, merges) = clip_vocab_from_gz(path, merges.min(CLIP_MERGES))?;
        Self::build(encoder, merges, pad_token, MAX_LENGTH, path)
    }

    /// Reads a diffusers `tokenizer/` folder: `vocab.json` + `merges.txt` (preferred, as transformers does) or
    /// `tokenizer.json`; the pad token and length from `tokenizer_config.json` / `special_tokens_map.json`.
    pub fn from_dir(dir: &Path) -> Result<Self, TokenizerError> {
        let mut pad_token = EOS.to_owned();
        let mut max_length = MAX_LENGTH;
        for name in ["special_tokens_map.json", "tokenizer_config.json"] {
            let p = dir.join(name);
            if !p.is_file() {
                continue;
            }
            let v: serde_json::Value =
                serde_json::from_str(&read_text(&p)?).map_err(|e| malformed(&p, e.to_string()))?;
            if let Some(t) = v.get("pad_token").and_then(token_field) {
                pad_token = t;
            }
            if let Some(n) = v.get("model_max_length").and_then(|n| n.as_u64()) {
                if n < 2 {
                    return Err(malformed(
                        &p,
                        format!("\"model_max_length\" is {n}; it must leave room for <|startoftext|> and <|endoftext|> (CLIP uses 77)"),
                    ));
                }
                // Some configs say "very large" (1e30) for no limit; CLIP's position table is 77.
                max_length = (n as usize).min(MAX_LENGTH);
            }
        }
        let (vocab_p, merges_p, json_p) = (
            dir.join("vocab.json"),
            dir.join("merges.txt"),
            dir.join("tokenizer.json"),
        );
        let (encoder, merges, src) = if vocab_p.is_file() && merges_p.is_file() {
            let encoder: HashMap<String, i64> = serde_json::from_str(&read_text(&vocab_p)?)
                .map_err(|e| malformed(&vocab_p, e.to_string()))?;
            let merges = parse_merge_lines(&read_text(&merges_p)?, &merges_p)?;
            (encoder, merges, vocab_p)
        } else if json_p.is_file() {
            let (e, m) = vocab_from_tokenizer_json(&json_p)?;
            (e, m, json_p)
        } else {
            return Err(TokenizerError::NotFound {
                dir: dir.to_path_buf(),
            });
        };
        Self::build(encoder, merges, &pad_token, max_length, &src)
    }

    pub fn bos_id(&self) -> i64 {
        self.bos_id
    }
    pub fn eos_id(&self) -> i64 {
        self.eos_id
    }
    pub fn pad_id(&self) -> i64 {
        self.pad_id
    }
    pub fn max_length(&self) -> usize {
        self.max_length
    }
    pub fn vocab_size(&self) -> usize {
        self.encoder.len()
    }

    /// Adds `token` as one id past the vocabulary (`first_id` and on, in order), matched on the raw text like a
    /// special token, as transformers' `add_tokens` does for a textual-inversion token. An existing token is an
    /// error: it would shadow a word of the vocabulary.
    pub fn add_token(&mut self, token: &str, id: i64) -> Result<(), String> {
        if token.is_empty()
            || self.encoder.contains_key(token)
            || self.specials.iter().any(|(s, _)| s == token)
        {
            return Err(format!(
                "the token {token:?} is empty or already in the tokenizer's vocabulary; choose a token of its own, \
                 e.g. \"<my-style>\""
            ));
        }
        self.specials.push((token.to_owned(), id));
        Ok(())
    }

    /// Ids of the text alone, without specials, truncation or padding.
    pub fn encode_raw(&self, text: &str) -> Vec<i64> {
        let mut ids = Vec::new();
        // Special tokens written into the text are matched on the raw text before normalization, leftmost
        // and then longest first, as transformers' added tokens are. That includes the pad token: SD 2's
        // tokenizer turns every "!" into the pad id.
        let mut rest = text;
        while !rest.is_empty() {
            let next = self
                .specials
                .iter()
                .filter_map(|(s, id)| rest.find(s.as_str()).map(|i| (i, s.len(), *id)))
                .min_by_key(|&(i, len, _)| (i, std::cmp::Reverse(len)));
            match next {
                Some((i, len, id)) => {
                    self.encode_chunk(&rest[..i], &mut ids);
                    ids.push(id);
                    rest = &rest[i + len..];
                }
                None => {
                    self.encode_chunk(rest, &mut ids);
                    rest = "";
                }
            }
        }
        ids
    }

    fn encode_chunk(&self, chunk: &str, ids: &mut Vec<i64>) {
        let nfc: String = chunk.nfc().collect();
        let mut collapsed = String::with_capacity(nfc.len());
        let mut in_space = false;
        for c in nfc.chars() {
            if c.is_whitespace() {
                if !in_space {
                    collapsed.push(' ');
                }
                in_space = true;
            } else {
                collapsed.push(c);
                in_space = false;
            }
        }
        // Per character, as the tokenizers library lower-cases (no final-sigma rule).
        let text: String = collapsed.chars().flat_map(char::to_lowercase).collect();
        for piece in self.clip_split.find_iter(&text) {
            for word in self.gpt2_split.find_iter(piece.as_str()) {
                let symbols: String = word
                    .as_str()
                    .bytes()
                    .map(|b| self.byte_symbols[b as usize])
                    .collect();
                ids.extend(self.bpe(&symbols));
            }
        }
    }

    /// BPE on one byte-mapped word: repeatedly merge the lowest-ranked adjacent pair, leftmost first.
    fn bpe(&self, word: &str) -> Vec<i64> {
        if let Ok(cache) = self.cache.lock() {
            if let Some(ids) = cache.get(word) {
                return ids.clone();
            }
        }
        let mut parts: Vec<String> = word.chars().map(String::from).collect();
        if let Some(last) = parts.last_mut() {
            last.push_str("</w>");
        }
        loop {
            let best = parts
                .windows(2)
                .enumerate()
                .filter_map(|(i, w)| {
                    self.ranks
                        .get(&(w[0].clone(), w[1].clone()))
                        .map(|&r| (r, i))
                })
                .min();
            let Some((_, i)) = best else { break };
            let right = parts.remove(i + 1);
            parts[i].push_str(&right);
        }
        // Symbols outside the vocabulary become the unknown token, which is `<|endoftext|>` for CLIP.
        let ids: Vec<i64> = parts
            .iter()
            .map(|p| self.encoder.get(p).copied().unwrap_or(self.eos_id))
            .collect();
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(word.to_owned(), ids.clone());
        }
        ids
    }

    /// `[BOS, text…, EOS, pad…]` of exactly `max_length` ids; long text is cut so BOS and EOS stay.
    pub fn encode(&self, text: &str) -> Vec<i64> {
        let mut body = self.encode_raw(text);
        body.truncate(self.max_length.saturating_sub(2));
        let mut ids = Vec::with_capacity(self.max_length);
        ids.push(self.bos_id);
        ids.extend(body);
        ids.push(self.eos_id);
        ids.resize(self.max_length, self.pad_id);
        ids
    }

    /// Writes `vocab.json`, `merges.txt` and the two small configs of a diffusers `tokenizer/` folder.
    pub fn save_dir(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut vocab: Vec<(&String, &i64)> = self.encoder.iter().collect();
        vocab.sort_by_key(|(_, id)| **id);
        let map: serde_json::Map<String, serde_json::Value> = vocab
            .into_iter()
            .map(|(t, id)| (t.clone(), (*id).into()))
            .collect();
        std::fs::write(dir.join("vocab.json"), serde_json::to_string(&map)?)?;
        let mut merges: Vec<(&(String, String), &usize)> = self.ranks.iter().collect();
        merges.sort_by_key(|(_, r)| **r);
        let mut text = String::from("#version: 0.2\n");
        for ((a, b), _) in merges {
            text.push_str(a);
            text.push(' ');
            text.push_str(b);
            text.push('\n');
        }
        std::fs::write(dir.join("merges.txt"), text)?;
        let pad = self
            .encoder
            .iter()
            .find(|(_, &id)| id == self.pad_id)
            .map(|(t, _)| t.clone())
            .unwrap_or_else(|| EOS.to_owned());
        let special = serde_json::json!({
            "bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": pad,
        });
        std::fs::write(
            dir.join("special_tokens_map.json"),
            serde_json::to_string_pretty(&special)?,
        )?;
        let config = serde_json::json!({
            "tokenizer_class": "CLIPTokenizer", "model_max_length": self.max_length,
            "do_lower_case": true, "errors": "replace",
            "bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": pad,
        });
        std::fs::write(
            dir.join("tokenizer_config.json"),
            serde_json::to_string_pretty(&config)?,
        )?;
        Ok(())
    }
}

type Vocab = (HashMap<String, i64>, Vec<(String, String)>);

fn clip_vocab_from_gz(path: &Path, keep: usize) -> Result<Vocab, TokenizerError> {
    let file = std::fs::File::open(path).map_err(|source| TokenizerError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .map_err(|source| TokenizerError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    // Line 0 is a version header; CLIP keeps the next 48894 merges.
    let lines: Vec<&str> = text.split('\n').skip(1).take(CLIP_MERGES).collect();
    if lines.len() < CLIP_MERGES {
        return Err(malformed(
            path,
            format!("expected {CLIP_MERGES} merges, found {}", lines.len()),
        ));
    }
    let merges = parse_merge_lines(&lines[..keep].join("\n"), path)?;
    Ok(clip_vocab(merges))
}

/// CLIP's token ids: the 256 byte tokens, the same with `</w>`, one per merge in rank order, then BOS and EOS.
fn clip_vocab(merges: Vec<(String, String)>) -> Vocab {
    let mut tokens: Vec<String> = bytes_to_unicode()
        .iter()
        .map(|(_, c)| c.to_string())
        .collect();
    let with_end: Vec<String> = tokens.iter().map(|t| format!("{t}</w>")).collect();
    tokens.extend(with_end);
    tokens.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
    tokens.push(BOS.to_owned());
    tokens.push(EOS.to_owned());
    let encoder = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, i as i64))
        .collect();
    (encoder, merges)
}

fn vocab_from_tokenizer_json(path: &Path) -> Result<Vocab, TokenizerError> {
    let v: serde_json::Value =
        serde_json::from_str(&read_text(path)?).map_err(|e| malformed(path, e.to_string()))?;
    let model = v
        .get("model")
        .ok_or_else(|| malformed(path, "no \"model\" object"))?;
    let vocab = model
        .get("vocab")
        .and_then(|x| x.as_object())
        .ok_or_else(|| malformed(path, "no \"model.vocab\" object"))?;
    let mut encoder = HashMap::with_capacity(vocab.len());
    for (t, id) in vocab {
        let id = id
            .as_i64()
            .ok_or_else(|| malformed(path, format!("vocab entry {t:?} has a non-integer id")))?;
        encoder.insert(t.clone(), id);
    }
    // Added tokens (the specials) may live outside model.vocab.
    for t in v
        .get("added_tokens")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
    {
        if let (Some(c), Some(id)) = (
            t.get("content").and_then(|c| c.as_str()),
            t.get("id").and_then(|i| i.as_i64()),
        ) {
            encoder.entry(c.to_owned()).or_insert(id);
        }
    }
    let mut merges = Vec::new();
    for (i, m) in model
        .get("merges")
        .and_then(|x| x.as_array())
        .ok_or_else(|| malformed(path, "no \"model.merges\" list"))?
        .iter()
        .enumerate()
    {
        // Older files write "a b", newer ones ["a", "b"].
        let pair = match m {
            serde_json::Value::String(s) => {
                s.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned()))
            }
            serde_json::Value::Array(a) if a.len() == 2 => match (a[0].as_str(), a[1].as_str()) {
                (Some(x), Some(y)) => Some((x.to_owned(), y.to_owned())),
                _ => None,
            },
            _ => None,
        };
        merges.push(pair.ok_or_else(|| malformed(path, format!("merge {i} is not a pair: {m}")))?);
    }
    Ok((encoder, merges))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_map_is_a_bijection_in_clip_order() {
        let pairs = bytes_to_unicode();
        assert_eq!(pairs.len(), 256);
        assert_eq!(pairs[0], (b'!', '!'));
        let mut chars: Vec<char> = pairs.iter().map(|p| p.1).collect();
        chars.sort();
        chars.dedup();
        assert_eq!(chars.len(), 256);
        // Byte 0 is not printable, so it maps to the first code point after Latin-1.
        assert!(pairs.contains(&(0, '\u{100}')));
        assert!(pairs.contains(&(b' ', '\u{120}')));
    }

    fn toy() -> ClipTokenizer {
        let (enc, merges) = clip_vocab(vec![
            ("a".to_owned(), "b".to_owned()),
            ("ab".to_owned(), "c</w>".to_owned()),
            ("a".to_owned(), "a".to_owned()),
        ]);
        ClipTokenizer::build(enc, merges, EOS, MAX_LENGTH, Path::new("toy")).unwrap()
    }

    #[test]
    fn bpe_merges_by_rank_and_marks_word_ends() {
        let t = toy();
        let id = |s: &str| t.encoder[s];
        assert_eq!(t.encode_raw("abc"), vec![id("abc</w>")]);
        assert_eq!(
            t.encode_raw("ABC  ab"),
            vec![id("abc</w>"), id("a"), id("b</w>")]
        );
        // "aaa" merges the leftmost pair first.
        assert_eq!(t.encode_raw("aaa"), vec![id("aa"), id("a</w>")]);
        // Digits split one by one; punctuation runs stay together before BPE.
        assert_eq!(t.encode_raw("12"), vec![id("1</w>"), id("2</w>")]);
    }

    #[test]
    fn encode_pads_and_keeps_eos_on_truncation() {
        let t = toy();
        let ids = t.encode("abc");
        assert_eq!(ids.len(), 77);
        assert_eq!(&ids[..3], &[t.bos_id, t.encoder["abc</w>"], t.eos_id]);
        assert!(ids[3..].iter().all(|&i| i == t.pad_id));
        let long = t.encode(&"abc ".repeat(200));
        assert_eq!(long.len(), 77);
        assert_eq!(long[0], t.bos_id);
        assert_eq!(long[76], t.eos_id);
    }

    #[test]
    fn max_length_without_room_for_bos_and_eos_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        toy().save_dir(dir.path()).unwrap();
        let config = dir.path().join("tokenizer_config.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        v["model_max_length"] = 1.into();
        std::fs::write(&config, v.to_string()).unwrap();
        let err = ClipTokenizer::from_dir(dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("model_max_length") && err.contains("tokenizer_config.json"),
            "{err}"
        );
    }
}
