"""`sluice tokenize` gives the same ids as Hugging Face `tokenizers` on the real
all-MiniLM-L6-v2 tokenizer.json, on variants of it that switch its options, and on every
code point."""

import copy
import json
import random

import pytest
from tokenizers import Tokenizer

SEED = 20240611
SPECIALS = ["[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]"]


def _pool(*ranges):
    return [chr(c) for lo, hi in ranges for c in range(lo, hi + 1) if not 0xD800 <= c <= 0xDFFF]


POOLS = {
    "ascii_letters": _pool((0x61, 0x7A), (0x41, 0x5A)),
    "digits": _pool((0x30, 0x39)),
    "ascii_punct": list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "latin_accented": _pool((0xC0, 0x17F), (0x1E00, 0x1EFF)),
    "combining": _pool((0x300, 0x36F), (0x1AB0, 0x1ACE), (0x20D0, 0x20F0)),
    "greek_cyrillic": _pool((0x370, 0x3FF), (0x400, 0x4FF), (0x1F00, 0x1FFF)),
    "cjk": _pool((0x4E00, 0x4FFF), (0x3400, 0x3420), (0x20000, 0x20030), (0xF900, 0xF920),
                 (0x3040, 0x30FF), (0x2F800, 0x2F810)),
    "hangul": _pool((0xAC00, 0xAD00), (0x1100, 0x1112)),
    "thai": _pool((0xE01, 0xE5B)),
    "arabic_hebrew": _pool((0x600, 0x6FF), (0x590, 0x5FF), (0xFB50, 0xFB70)),
    "indic": _pool((0x900, 0x97F), (0xB80, 0xBFF)),
    "emoji": _pool((0x1F600, 0x1F64F), (0x1F300, 0x1F5FF), (0x1F900, 0x1F9FF), (0x1FA70, 0x1FAFF),
                   (0x2600, 0x26FF)),
    "controls": _pool((0x0, 0x8), (0xB, 0x1F), (0x7F, 0x9F)),
    "zero_width": list("\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad\u034f\u180e"),
    "spaces": list("\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
                   "\u200a\u2028\u2029\u202f\u205f\u3000\t\n\r\x0b\x0c\x85"),
    "fullwidth": _pool((0xFF01, 0xFF5E), (0xFF61, 0xFF9F)),
    "unicode_punct": _pool((0x2010, 0x2027), (0x2030, 0x205E), (0x3001, 0x3003), (0x2E00, 0x2E5D),
                           (0xFE10, 0xFE19)),
    "symbols": _pool((0x2190, 0x21FF), (0x2200, 0x22FF), (0x20A0, 0x20C0), (0x2460, 0x24FF)),
    "odd": list("\ufffd\ufffe\uffff\ue000\uf8ff\U000f0000\U0010fffd\u0130\u1e9e\u03a3\u01c5"
                "\u2126\u212a\u212b\U0001d400\U0001d7ce\u0345\u0f73\u1734\U00011938\u0890"),
}
WORDS = ("the quick brown fox jumps over lazy dog PostgreSQL embeddings vectors don't it's "
         "naïve café résumé Straße İstanbul ΣΊΣΥΦΟΣ München tokenization unaffable "
         "hyper-parameter e-mail U.S.A. 3.14159 1,000,000 #hashtag @user http://example.com/a?b=c "
         "東京 北京大学 日本語 한국어 ภาษาไทย العربية עברית हिन्दी Ünïcödé ǅemal").split()
EMOJI_SEQUENCES = [
    "👩‍👩‍👧‍👦", "👨🏽‍💻", "🏳️‍🌈", "🇺🇸🇯🇵", "👍🏿", "❤️", "🧑‍🤝‍🧑", "1️⃣", "🫠🫶🏻", "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
]


def _random_token(rng):
    kind = rng.random()
    if kind < 0.35:
        return rng.choice(WORDS)
    if kind < 0.45:
        return rng.choice(SPECIALS + ["[cls]", "[MASK", "MASK]", "[[SEP]]", "[CLS][SEP]"])
    if kind < 0.52:
        return rng.choice(EMOJI_SEQUENCES)
    pool = POOLS[rng.choice(sorted(POOLS))]
    return "".join(rng.choice(pool) for _ in range(rng.randint(1, 12)))


def _random_text(rng):
    n = rng.choice([1, 2, 3, 5, 8, 13, 30, 80])
    parts = []
    for _ in range(n):
        parts.append(_random_token(rng))
        parts.append(rng.choice([" ", " ", " ", "", "  ", "\n", "\t", "\u3000", "\u00a0", ", ", ". "]))
    return "".join(parts)


def _random_code_points(rng, n):
    out = []
    while len(out) < n:
        c = rng.randint(0, 0x10FFFF) if rng.random() < 0.3 else rng.randint(0, 0x2FFFF)
        if not 0xD800 <= c <= 0xDFFF:
            out.append(chr(c))
    return "".join(out)


CURATED = [
    "", " ", "   ", "\n", "\t\r\n", "\u3000", "\u00a0\u00a0", "\x00", "\ufffd", "\u200b",
    "Hello, world!", "HELLO WORLD", "hello    world", "don't stop believin'",
    "I can't, won't, shouldn't.", "The U.S.A. is 3.14 miles... or 1,000,000?!",
    "naïve café résumé", "Ångström", "e\u0301", "E\u0301\u0327", "a\u0308\u0301\u0323",
    "\u1e9b\u0323", "ḍ̇", "ﬁ ﬂ ﬃ", "ǅ ǈ ǋ", "İstanbul ıiIİ", "ΣΊΣΥΦΟΣ ὈΔΥΣΣΕΎΣ", "Straße STRASSE ẞ",
    "東京は日本の首都です。", "我爱北京天安门", "中文English混合", "𠀀𠀁 丽", "日本語のテキスト",
    "한국어 텍스트 입니다", "ภาษาไทยง่ายนิดเดียว", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया",
    "Привет, мир!", "Γειά σου Κόσμε", "👩‍👩‍👧‍👦 family", "👍🏿👍🏻", "🇺🇸🇬🇧🇯🇵", "I ❤️ NY", "🫠",
    "a\u200bb\u200cc\u200dd", "soft\u00adhyphen", "zero\ufeffwidth", "tab\tand\nnewline\rreturn",
    "bell\x07char\x1bescape\x7fdel", "nbsp\u00a0here", "ideographic\u3000space",
    "ｆｕｌｌｗｉｄｔｈ　ＡＢＣ！", "１２３ ＡＢＣ ｱｲｳ", "!!!???...,,,;;;", "----====____", "((([[[{{{}}}]]])))",
    "«quotes» “curly” ‘single’ „low“", "em—dash en–dash", "a/b\\c|d", "$100 €50 £20 ¥1000 ₿",
    "[CLS]", "[SEP] [MASK] [PAD] [UNK]", "hello[MASK]world", "[CLS][SEP][MASK]", "[cls] [Mask]",
    "[MASK", "MASK]", "[[MASK]]", " [MASK] ", "[UNK]nown", "x" * 100, "x" * 101, "é" * 100,
    "é" * 101, "supercalifragilisticexpialidocious" * 4, "a" * 1000, "ab " * 2000,
    "unaffable ##ing ##", "#hashtag @mention", "http://example.com/path?q=1&r=2#frag",
    "user@example.com", "C++ and C# and F#", "x86_64 __init__ self.foo_bar", "2024-06-11T12:00:00Z",
    "\U0001d400\U0001d401 \U0001d7ce", "Ω Å K", "\u0345\u0399", "\u0f73\u0f75", "\u1734",
    "\U00011938", "\u0890\u0891", "\U00013430", "\u2e43\u2e52", "\u166d", "\ua7cb\ua7dc",
    "\U00010d50\U00016ea0", "\ue000\uf8ff", "\U000f0000", "\ufffe\uffff", "\u0085next line",
    "\u2028\u2029", "\u180e", "\u1680ogham", "\u061c\u200e\u200f", "\U000e0001\U000e0041",
]


def _corpus():
    rng = random.Random(SEED)
    texts = list(CURATED)
    texts += [_random_text(rng) for _ in range(2000)]
    texts += [_random_code_points(rng, rng.randint(1, 60)) for _ in range(300)]
    for _ in range(6):  # very long texts, thousands of words
        texts.append(" ".join(_random_token(rng) for _ in range(rng.randint(2000, 6000))))
    return texts


CORPUS = _corpus()


def _sluice_ids(run_sluice, model_dir, texts, *extra):
    payload = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts)
    result = run_sluice("tokenize", "--model", model_dir, "--jsonl", *extra, input=payload)
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert len(lines) == len(texts)
    return [json.loads(line)["ids"] for line in lines]


def _hf_tokenizer(path):
    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()
    return tok


def _assert_same(texts, ours, theirs):
    bad = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    report = "\n".join(f"{texts[i][:200]!r}\n  sluice {ours[i][:40]}\n  hf     {theirs[i][:40]}"
                       for i in bad[:5])
    assert not bad, f"{len(bad)} of {len(texts)} texts differ:\n{report}"


def _write_variant(tmp_path_factory, model_dir, name, edit):
    config = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    edit(config)
    directory = tmp_path_factory.mktemp(name)
    (directory / "tokenizer.json").write_text(json.dumps(config, ensure_ascii=False),
                                              encoding="utf-8")
    return directory


def test_corpus_is_large_and_varied():
    assert len(CORPUS) >= 2000
    assert len(set(CORPUS)) > 2000
    assert max(len(t.split()) for t in CORPUS) > 2000


def test_parity_with_real_tokenizer(run_sluice, model_dir):
    hf = _hf_tokenizer(model_dir / "tokenizer.json")
    theirs = [e.ids for e in hf.encode_batch(CORPUS)]
    _assert_same(CORPUS, _sluice_ids(run_sluice, model_dir, CORPUS), theirs)


def test_parity_on_plain_lines(run_sluice, model_dir):
    """Without --jsonl each line is one text."""
    texts = [t for t in CORPUS if "\n" not in t and "\r" not in t and "\x85" not in t
             and "\u2028" not in t and "\u2029" not in t][:500]
    hf = _hf_tokenizer(model_dir / "tokenizer.json")
    payload = "".join(t + "\n" for t in texts)
    result = run_sluice("tokenize", "--model", model_dir, input=payload)
    assert result.returncode == 0, result.stderr.decode()
    ours = [json.loads(line)["ids"] for line in result.stdout.decode().split("\n")[:-1]]
    _assert_same(texts, ours, [e.ids for e in hf.encode_batch(texts)])


@pytest.mark.parametrize("max_length", [2, 3, 7, 16, 128, 512])
def test_parity_with_max_length(run_sluice, model_dir, max_length):
    hf = _hf_tokenizer(model_dir / "tokenizer.json")
    hf.enable_truncation(max_length)
    theirs = [e.ids for e in hf.encode_batch(CORPUS)]
    ours = _sluice_ids(run_sluice, model_dir, CORPUS, "--max-length", max_length)
    assert all(len(ids) <= max_length for ids in ours)
    _assert_same(CORPUS, ours, theirs)


def _set_normalizer(**options):
    def edit(config):
        config["normalizer"].update(options)
    return edit


def _bert_processing(config):
    config["post_processor"] = {"type": "BertProcessing", "sep": ["[SEP]", 102],
                                "cls": ["[CLS]", 101]}


def _no_components(config):
    config["normalizer"] = None
    config["post_processor"] = None


def _added_token_options(config):
    for token in config["added_tokens"]:
        if token["content"] == "[MASK]":
            token.update(lstrip=True, rstrip=True, single_word=True)
        if token["content"] == "[SEP]":
            token.update(normalized=True)
    config["added_tokens"].append({"id": 30522, "content": "Hello World", "single_word": False,
                                   "lstrip": False, "rstrip": False, "normalized": True,
                                   "special": False})
    config["added_tokens"].append({"id": 30523, "content": "é!", "single_word": False,
                                   "lstrip": True, "rstrip": False, "normalized": False,
                                   "special": True})


def _sequences(config):
    config["normalizer"] = {"type": "Sequence", "normalizers": [config["normalizer"]]}
    config["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "WhitespaceSplit"}, config["pre_tokenizer"]]}


VARIANTS = {
    "cased_strip_accents": _set_normalizer(lowercase=False, strip_accents=True),
    "cased": _set_normalizer(lowercase=False, strip_accents=None),
    "lowercase_keep_accents": _set_normalizer(lowercase=True, strip_accents=False),
    "no_chinese_chars": _set_normalizer(handle_chinese_chars=False),
    "no_clean_text": _set_normalizer(clean_text=False),
    "all_off": _set_normalizer(clean_text=False, handle_chinese_chars=False, lowercase=False,
                               strip_accents=False),
    "bert_processing": _bert_processing,
    "no_normalizer_no_post_processor": _no_components,
    "added_token_options": _added_token_options,
    "sequences": _sequences,
    "short_words": lambda c: c["model"].update(max_input_chars_per_word=5),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_parity_with_variant(run_sluice, model_dir, tmp_path_factory, name):
    directory = _write_variant(tmp_path_factory, model_dir, name, VARIANTS[name])
    hf = _hf_tokenizer(directory / "tokenizer.json")
    texts = CORPUS + ["Hello World hello world HELLO WORLD", "xé! é!é! [MASK]x x [MASK] x",
                      "a [MASK]\t[MASK]  b", "[SEP] [sep]"]
    theirs = [e.ids for e in hf.encode_batch(texts)]
    _assert_same(texts, _sluice_ids(run_sluice, directory, texts), theirs)


def _sweep_texts(code_points):
    """Each code point alone inside a word, and in runs with its neighbours."""
    texts = []
    for i in range(0, len(code_points), 32):
        group = code_points[i:i + 32]
        texts.append(" ".join(f"a{c}b" for c in group) + " " + "".join(group[:16]) + " " +
                     "".join(group[16:]) + " " + "".join(c + "\u0301" for c in group[:8]))
    return texts


@pytest.fixture(scope="module")
def sweep_code_points():
    ranges = [(0, 0x3FFFF), (0xE0000, 0xE0FFF), (0xF0000, 0xF00FF), (0x10FF00, 0x10FFFF)]
    return [chr(c) for lo, hi in ranges for c in range(lo, hi + 1)
            if not 0xD800 <= c <= 0xDFFF and c != 0x0A]


@pytest.mark.parametrize("normalizer", [
    {},
    {"lowercase": True, "strip_accents": False},
    {"lowercase": False, "strip_accents": True, "clean_text": False},
])
def test_every_code_point(run_sluice, model_dir, tmp_path_factory, sweep_code_points, normalizer):
    """A vocabulary holding every code point as a token makes any difference in normalization
    or splitting, on any character, show in the ids."""
    def edit(config):
        config["normalizer"].update(normalizer)
        vocab = config["model"]["vocab"]
        next_id = max(vocab.values()) + 1
        for c in sweep_code_points:
            for token in (c, "##" + c):
                if token not in vocab:
                    vocab[token] = next_id
                    next_id += 1

    directory = _write_variant(tmp_path_factory, model_dir, "sweep", edit)
    hf = _hf_tokenizer(directory / "tokenizer.json")
    texts = _sweep_texts(sweep_code_points)
    theirs = [e.ids for e in hf.encode_batch(texts)]
    _assert_same(texts, _sluice_ids(run_sluice, directory, texts), theirs)
