#!/usr/bin/env python3
"""Tokenizer fixture for the Java Qwen2 byte-level BPE tokenizer (dev.sa2va.mllm.Tokenizer).

Trains a small byte-level BPE tokenizer with HF `tokenizers`, configured like Qwen2/Qwen2.5's
tokenizer.json (NFC normaliser, Qwen2 split regex + ByteLevel without prefix space, ByteLevel decoder),
appends the added tokens that a Sa2VA (InternVL2.5 + Qwen2.5) tokenizer carries after the BPE vocabulary,
and encodes a few thousand deterministic test strings. Needs only `tokenizers` (no torch).

Writes into OUT_DIR:
  tokenizer.json           the trained tokenizer (also used as the vocabulary of the tiny MLLM fixture)
  tokenizer_cases.jsonl.gz one JSON object per line: {"kind", "text", "ids", "decoded", "decoded_skip_special"}
  tokenizer_meta.json      versions, vocab size, added-token ids, case counts

Usage: python3 tokenizer_fixture.py OUT_DIR [--vocab 2048] [--cases 3000] [--seed 1234]
"""
import argparse
import gzip
import io
import json
import os
import random
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
import tokenizers

# Qwen2's pre-tokenisation pattern (tokenizer.json of Qwen/Qwen2.5-*: "Split" with behavior "Isolated").
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")

# Added tokens in the order a Sa2VA-1B/4B tokenizer has them: Qwen2.5's own, then InternVL's, then the five
# Sa2VA adds (convert_to_hf.py). (content, special). Qwen2.5 marks <tool_call> etc. as non-special; two
# of those are kept so that the non-special added-token path is exercised too.
ADDED_TOKENS = [
    ("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
    ("<tool_call>", False), ("</tool_call>", False),
    ("<img>", True), ("</img>", True), ("<IMG_CONTEXT>", True),
    ("<quad>", True), ("</quad>", True), ("<ref>", True), ("</ref>", True), ("<box>", True), ("</box>", True),
    ("[SEG]", True), ("<p>", True), ("</p>", True), ("<vp>", True), ("</vp>", True),
]

WORDS = ("the of and to in is you that it he was for on are as with his they at be this have from or one had "
         "by word but not what all were we when your can said there use an each which she do how their if will "
         "up other about out many then them these so some her would make like him into time has look two more "
         "write go see number no way could people my than first water been call who oil its now find long down "
         "day did get come made may part segment vessel retina retinal blood mask image please thin structure "
         "artery vein optic disc fundus capillary branch lesion left right upper lower Sure it is result").split()
SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ar", "en", "is", "on", "ul")]
CJK_TEXT = "请分割图像中的血管视网膜眼底动脉静脉这是结果好的我们可以看到细小分支病变区域左右上下"
JA_TEXT = "網膜の血管をセグメントしてくださいこれは結果ですひらがなカタカナ"
KO_TEXT = "망막혈관을분할해주세요결과입니다"
OTHER_SCRIPTS = ["Привет мир, сосуды сетчатки", "مرحبا بالعالم", "नमस्ते दुनिया", "γειά σου κόσμε",
                 "Ünïcödé façade naïve coöperate", "Straße ß ẞ", "ĳ ŉ ǅ", "ไทย ภาษา", "שלום עולם"]
EMOJI = ["😀", "😂", "👍", "👍🏽", "❤️", "🩸", "👁️", "🧠", "🔬", "👩‍⚕️", "👨‍👩‍👧‍👦", "🇩🇪", "🇯🇵", "🏳️‍🌈", "✅",
         "☺", "☺️", "🫀", "🦠", "1️⃣", "#️⃣"]
WHITESPACE = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\t\t", " \t ", "\u00a0", "\u3000",
              "\u2003", "\r", "\x0b", "\x0c", "\u2028"]
SPECIAL_SNIPPETS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<img>", "</img>", "<IMG_CONTEXT>", "[SEG]",
                    "<p>", "</p>", "<vp>", "</vp>", "<tool_call>", "</tool_call>", "<box>", "<ref>",
                    # near misses that must NOT become added tokens
                    "<img", "img>", "[SEG", "SEG]", "[seg]", "<IMG_CONTEXT", "<|im_start|", "<|end|>", "<|user|>",
                    "<|assistant|>", "<image>", "< img>", "<<img>>", "[[SEG]]"]


def build_corpus(rng, n_lines):
    """Deterministic training text: the tokenizer should learn merges for words, CJK, emoji and spaces."""
    lines = []
    for _ in range(n_lines):
        kind = rng.random()
        if kind < 0.45:
            ws = [rng.choice(WORDS) for _ in range(rng.randint(3, 18))]
            if rng.random() < 0.3:
                ws[0] = ws[0].capitalize()
            s = " ".join(ws)
            if rng.random() < 0.5:
                s += rng.choice([".", "?", "!", ",", ":", ";", " ..."])
            if rng.random() < 0.2:
                s += " " + str(rng.randint(0, 100000))
        elif kind < 0.7:
            a = rng.randint(0, len(CJK_TEXT) - 4)
            s = CJK_TEXT[a:a + rng.randint(2, 12)]
            s += "".join(chr(0x4E00 + rng.randint(0, 400)) for _ in range(rng.randint(0, 6)))
        elif kind < 0.78:
            s = rng.choice([JA_TEXT, KO_TEXT])[: rng.randint(3, 15)]
        elif kind < 0.85:
            s = rng.choice(OTHER_SCRIPTS)
        elif kind < 0.9:
            s = " ".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 4)))
        elif kind < 0.96:
            # pseudo-words give the trainer enough distinct pairs to reach a vocabulary of a few thousand
            s = " ".join("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))
                         for _ in range(rng.randint(2, 10)))
        else:
            s = "def f(x):\n    return x * %d  # %s\n" % (rng.randint(0, 99), rng.choice(WORDS))
        lines.append(s)
    return lines


def train_tokenizer(vocab_size, seed):
    rng = random.Random(seed)
    tok = Tokenizer(models.BPE(dropout=None, unk_token=None, continuing_subword_prefix="",
                               end_of_word_suffix="", fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    # Qwen2's post-processor is ByteLevel too; it adds no ids (no BOS), which is what Sa2VA relies on.
    from tokenizers import processors
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(build_corpus(rng, 40000), trainer=trainer)
    for content, special in ADDED_TOKENS:
        at = AddedToken(content, single_word=False, lstrip=False, rstrip=False, normalized=False, special=special)
        if special:
            tok.add_special_tokens([at])
        else:
            tok.add_tokens([at])
    return tok


def random_codepoint_string(rng, n):
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.4:
            cp = rng.randint(0x20, 0x7E)
        elif r < 0.6:
            cp = rng.randint(0xA0, 0x2FFF)
        elif r < 0.8:
            cp = rng.randint(0x3000, 0xD7FF)
        elif r < 0.9:
            cp = rng.randint(0xE000, 0xFFFD)
        else:
            cp = rng.randint(0x10000, 0x10FFFF)
            while 0xFFFE <= (cp & 0xFFFF):  # skip the non-characters xxFFFE / xxFFFF
                cp = rng.randint(0x10000, 0x10FFFF)
        out.append(chr(cp))
    return "".join(out)


def test_cases(rng, n):
    """(kind, text) pairs; a fixed hand-written head, then random mixtures of every category."""
    cases = [("fixed", s) for s in [
        "", " ", "a", "Hello world", "Hello  world", " leading", "trailing ", "  both  ", "\n", "\n\n\n",
        "line1\nline2\r\nline3\rline4", "tabs\tand\t\tspaces", "don't I'LL we've you'RE she's they'd I'm",
        "12345 3.14159 1,000,000 0x1F 1e-6", "a1b2c3", "e\u0301 vs \u00e9 (NFC)", "Å vs A\u030a", "한국어 텍스트",
        "请分割图像中的血管。", "网膜の血管", "👩‍⚕️ doctor 👨‍👩‍👧‍👦 family 🇩🇪 flag 👍🏽 tone",
        "<image>\n Please segment the blood vessels in this image.",
        "<img><IMG_CONTEXT><IMG_CONTEXT><IMG_CONTEXT></img>",
        "<|im_start|>user\n<img><IMG_CONTEXT></img>\n Please segment the vessel.<|im_end|>\n<|im_start|>assistant\n",
        "<|user|>\nPlease segment the optic disc.<|end|>\n<|assistant|>\n",
        "Sure, it is [SEG].", "[SEG].", "Sure, [SEG].", "[SEG][SEG] [SEG]\n[SEG]", "Sure, the segmentation result is [SEG].<|im_end|>",
        "<p>vessel</p> [SEG]", "<vp><IMG_CONTEXT></vp>", "<tool_call>{\"a\": 1}</tool_call>", "<img", "[SEG", "<<img>>",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "!!!???...,,,;;;", "    indented code",
        "\u00a0nbsp\u00a0", "ideographic\u3000space", "zero\u200bwidth", "bom\ufeffinside", "\U0001F600" * 5,
        "mixed 中文 and English 和 😀 emoji", "$%^&*()_+-=[]{}|\\:\";'<>?,./`~",
    ]]
    gens = ["ascii", "cjk", "emoji", "whitespace", "special", "scripts", "random_cp", "mixed"]
    while len(cases) < n:
        kind = gens[len(cases) % len(gens)]
        if kind == "ascii":
            parts = []
            for _ in range(rng.randint(1, 12)):
                w = rng.choice(WORDS)
                w = rng.choice([w, w.upper(), w.capitalize(), w + "'s", w + "n't", str(rng.randint(0, 10 ** 6))])
                parts.append(w)
                parts.append(rng.choice([" ", " ", " ", "  ", ", ", ". ", "-", "_", "/", ""]))
            s = "".join(parts)
        elif kind == "cjk":
            s = "".join(chr(rng.randint(0x4E00, 0x9FFF)) if rng.random() < 0.6 else rng.choice(CJK_TEXT + JA_TEXT + KO_TEXT + "，。！？")
                        for _ in range(rng.randint(1, 20)))
        elif kind == "emoji":
            s = "".join(rng.choice(EMOJI + [chr(rng.randint(0x1F300, 0x1FAFF)), " ", "a", "\u200d", "\ufe0f"])
                        for _ in range(rng.randint(1, 10)))
        elif kind == "whitespace":
            s = "".join(rng.choice(WHITESPACE + [rng.choice(WORDS), "x", ".", "中"]) for _ in range(rng.randint(1, 12)))
        elif kind == "special":
            s = "".join(rng.choice(SPECIAL_SNIPPETS + [" ", "\n", rng.choice(WORDS), " " + rng.choice(WORDS), "中文", "😀"])
                        for _ in range(rng.randint(1, 10)))
        elif kind == "scripts":
            src = rng.choice(OTHER_SCRIPTS)
            a = rng.randint(0, max(0, len(src) - 2))
            s = src[a:a + rng.randint(1, len(src))] + rng.choice(["", " ", "\n", " 123"])
        elif kind == "random_cp":
            s = random_codepoint_string(rng, rng.randint(1, 16))
        else:
            pieces = [rng.choice(WORDS), rng.choice(EMOJI), rng.choice(SPECIAL_SNIPPETS), rng.choice(WHITESPACE),
                      CJK_TEXT[rng.randint(0, 20):][:3], str(rng.randint(0, 999)), random_codepoint_string(rng, 2)]
            rng.shuffle(pieces)
            s = "".join(pieces[: rng.randint(2, len(pieces))])
        cases.append((kind, s))
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--vocab", type=int, default=3000, help="BPE vocabulary size before the added tokens")
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)

    tok = train_tokenizer(args.vocab, args.seed)
    tok_path = os.path.join(args.out_dir, "tokenizer.json")
    tok.save(tok_path, pretty=True)
    # Encode with the tokenizer as read back from disk: that file is what the Java side loads.
    tok = Tokenizer.from_file(tok_path)

    cases = test_cases(random.Random(args.seed + 1), args.cases)
    texts = [t for _, t in cases]
    encs = tok.encode_batch(texts, add_special_tokens=True)
    n_tokens = 0
    # gzip with mtime 0 so that a rerun with the same versions gives the same bytes
    with gzip.GzipFile(os.path.join(args.out_dir, "tokenizer_cases.jsonl.gz"), "wb", mtime=0) as gz, \
            io.TextIOWrapper(gz, encoding="ascii", newline="\n") as f:
        for (kind, text), enc in zip(cases, encs):
            ids = enc.ids
            n_tokens += len(ids)
            # Byte-level BPE must round-trip modulo NFC; anything else means the file is inconsistent.
            dec = tok.decode(ids, skip_special_tokens=False)
            if dec != tok.normalizer.normalize_str(text):
                raise SystemExit("round trip failed for %r -> %r" % (text, dec))
            rec = {"kind": kind, "text": text, "ids": ids, "decoded": dec,
                   "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)}
            f.write(json.dumps(rec, ensure_ascii=True) + "\n")

    added = {c: tok.token_to_id(c) for c, _ in ADDED_TOKENS}
    meta = {
        "tokenizers_version": tokenizers.__version__,
        "python": sys.version.split()[0],
        "seed": args.seed,
        "bpe_vocab_size_requested": args.vocab,
        "vocab_size_with_added": tok.get_vocab_size(with_added_tokens=True),
        "vocab_size_without_added": tok.get_vocab_size(with_added_tokens=False),
        "added_tokens": added,
        "special": {c: s for c, s in ADDED_TOKENS},
        "num_cases": len(cases),
        "num_tokens_total": n_tokens,
        "case_kinds": sorted({k for k, _ in cases}),
    }
    with open(os.path.join(args.out_dir, "tokenizer_meta.json"), "w") as f:
        json.dump(meta, f, indent=1, ensure_ascii=True)
    print("tokenizer: vocab %d (+%d added), %d cases, %d tokens -> %s" % (
        meta["vocab_size_without_added"], len(ADDED_TOKENS), len(cases), n_tokens, args.out_dir))


if __name__ == "__main__":
    main()
