#!/usr/bin/env python3
"""Writes the parity corpus tests/fixtures/minilm/sentences.txt: one sentence per line,
deterministic, covering short and long inputs (past the 256-token window), many scripts,
numbers, code, punctuation and emoji."""
import pathlib
import random

BASE = [
    "The quick brown fox jumps over the lazy dog.",
    "PostgreSQL keeps the data; sluice turns it into vectors.",
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "Someone in a gorilla costume is playing a set of drums.",
    "How do I reset my password?",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "Embeddings map text to points in a vector space where distance means similarity.",
    "SELECT id, body FROM docs WHERE embedding <-> $1 < 0.3 ORDER BY id LIMIT 10;",
    "def add(a, b):    return a + b  # adds two numbers",
    "Error 503: the service is temporarily unavailable, retry after 30 seconds.",
    "Café déjà vu: naïve façades in São Paulo and Zürich.",
    "Ångström, Øresund, Łódź, Dvořák, İstanbul, ß and Æsir.",
    "東京は日本の首都です。",
    "北京欢迎你，今天天气很好。",
    "서울은 한국의 수도입니다.",
    "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
    "مرحبا بالعالم، هذه جملة عربية.",
    "Привет, мир! Это предложение на русском языке.",
    "Γειά σου Κόσμε, αυτή είναι μια ελληνική πρόταση.",
    "שלום עולם, זה משפט בעברית.",
    "नमस्ते दुनिया, यह एक हिंदी वाक्य है।",
    "I love pizza 🍕 and tacos 🌮!",
    "Family: 👨‍👩‍👧‍👦, flags: 🇫🇷🇯🇵, skin tones: 👍🏽",
    "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ　１２３",
    "Price: $1,299.99 (−15% off) → now €1.104,99!",
    "e = mc², ∑ x_i ≥ 0, π ≈ 3.14159, √2 ∉ ℚ",
    "https://example.com/path?query=1&lang=en#frag",
    "user@example.org wrote: \"Let's meet at 10:30 a.m.\"",
    "The mitochondria is the powerhouse of the cell.",
    "Stocks fell sharply on Tuesday as investors weighed inflation data.",
    "The patient presented with acute shortness of breath and chest pain.",
    "Under the agreement, the licensee shall indemnify the licensor against all claims.",
    "To be, or not to be, that is the question.",
    "It was the best of times, it was the worst of times.",
    "In the beginning God created the heaven and the earth.",
    "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "ALL CAPS SHOUTING SENTENCE WITH NUMBERS 12345 AND SYMBOLS !!!",
    "tab\tseparated\tvalues\tin\tone\tline",
    "zero\u200bwidth\u200cjoiners\u200dand\ufeffbyte order marks",
    "non\u00a0breaking\u00a0spaces\u3000and ideographic spaces",
    "control\u0001chars\u0007in\u001ftext",
    "e\u0301 a\u0308 o\u0302 combining marks n\u0303",
    "[CLS] literal special tokens [SEP] and [MASK] in text [PAD] [UNK]",
    "a",
    "?",
    "...",
    "OK",
    "",
]

TOPICS = [
    "databases", "GPUs", "cooking", "football", "astronomy", "medicine", "law", "music",
    "gardening", "economics", "history", "chemistry", "poetry", "travel", "networking",
]
VERBS = ["explains", "questions", "describes", "compares", "summarises", "criticises"]
ADJ = ["fast", "slow", "reliable", "surprising", "complex", "simple", "ancient", "modern"]


def sentence(rng: random.Random) -> str:
    t = rng.choice(TOPICS)
    return (f"This {rng.choice(ADJ)} article {rng.choice(VERBS)} {t} "
            f"and its {rng.choice(ADJ)} effects on {rng.choice(TOPICS)}.")


def main() -> None:
    rng = random.Random(20261121)
    lines = list(BASE)
    for _ in range(90):  # short generated sentences
        lines.append(sentence(rng))
    for n in (5, 10, 20, 40, 60, 80, 120, 200, 300, 400):  # long paragraphs
        for _ in range(6):
            lines.append(" ".join(sentence(rng) for _ in range(max(1, n // 12))) +
                         f" ({n})")
    for i in range(20):  # mixed-script lines
        lines.append(f"{rng.choice(BASE)} {rng.choice(BASE)} #{i}")
    out = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/minilm/sentences.txt"
    assert all("\n" not in s and "\r" not in s for s in lines)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} sentences -> {out}")


if __name__ == "__main__":
    main()
