"""URL lists and keyword lists over synthetic posts: throughput per core and freshness.

Run: ``.venv/bin/python benchmarks/bench_text.py [--megabytes 50] [--re-megabytes 10]``
(``--megabytes 1024`` for the 1 GB run of issue 7: about 6 minutes on the shared machine,
most of it generating posts; the posts are generated batch by batch, never held whole in
memory, only the ``--re-megabytes`` sample is kept).

What it measures, single-threaded (MB are megabytes of UTF-8 text; "per core" divides by the
process's CPU seconds):

1. keyword matching with all normalisation (:class:`bastion.index.keyword.KeywordIndex`,
   10,000 terms: Latin words and phrases, Cyrillic, Chinese, Thai, emoji), on batches of posts;
2. URL extraction plus matching (:func:`bastion.signals.url.extract_urls` and
   :class:`bastion.index.url.UrlIndex`, 100,000 list entries: exact, prefix and host);
3. the peer: a plain ``re`` alternation of the same 10,000 keywords (case-insensitive, word
   boundaries, no normalisation) on a sample of ``--re-megabytes`` MB (stops after
   ``--re-seconds`` and reports what it did), as a ratio;
4. time from a list update (add, remove) to visible in the next match, for both indexes,
   including updates that trigger the keyword index's background rebuild.

Synthetic posts: words of Latin, Cyrillic, Greek, Arabic, Chinese and Thai scripts, emoji,
numbers, URLs (about one post in four; some listed), planted keywords (some written with
evasions: spacing, fullwidth, zero-width, digits). The share of non-ASCII characters is
printed (about 20% is the target). The machine is shared (2 cores, other engineers' tests):
figures are indicative.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from collections.abc import Iterator

from bastion.index.keyword import KeywordIndex
from bastion.index.url import UrlIndex
from bastion.signals.keyword import parse_keyword_entry
from bastion.signals.url import extract_urls, parse_url_entry

LATIN = "abcdefghijklmnopqrstuvwxyz"
CYRILLIC = "абвгдежзийклмнопрстуфхцчшщыэюя"
GREEK = "αβγδεζηθικλμνξοπρστυφχψω"
ARABIC = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"
THAI = "กขคฆงจฉชซญฎฏฐฑฒณดตถทธนบปผฝพฟภมยรลวศษสหฬอฮะาเแโ"
EMOJI = ["🍕", "👍🏽", "❤️", "😀", "🔥", "🙈", "👨‍👩‍👧", "🎉"]
TLDS = ["com", "org", "net", "io", "co.uk", "de", "ru", "xyz", "info", "example"]


def _word(rng: random.Random, alphabet: str, lo: int = 2, hi: int = 9) -> str:
    return "".join(rng.choices(alphabet, k=rng.randint(lo, hi)))


def _cjk(rng: random.Random) -> str:
    return "".join(chr(rng.randint(0x4E00, 0x62FF)) for _ in range(rng.randint(2, 5)))


class Corpus:
    """Vocabularies, lists and a post generator, all from one seed."""

    def __init__(self, seed: int, n_keywords: int, n_urls: int) -> None:
        rng = random.Random(seed)
        self.rng = rng
        self.latin = [_word(rng, LATIN) for _ in range(20_000)]
        self.cyr = [_word(rng, CYRILLIC) for _ in range(4_000)]
        self.greek = [_word(rng, GREEK) for _ in range(1_000)]
        self.arabic = [_word(rng, ARABIC) for _ in range(1_000)]
        self.thai = [_word(rng, THAI, 3, 8) for _ in range(1_000)]
        self.cjk = [_cjk(rng) for _ in range(4_000)]
        self.hosts = [
            f"{_word(rng, LATIN, 3, 10)}.{rng.choice(TLDS)}" for _ in range(30_000)
        ]
        # Keywords: made-up terms so that hits are planted, not accidental.
        kws: set[str] = set()
        while len(kws) < n_keywords:
            r = rng.random()
            if r < 0.6:
                kws.add(_word(rng, LATIN, 5, 11))
            elif r < 0.75:
                kws.add(f"{_word(rng, LATIN, 3, 7)} {_word(rng, LATIN, 3, 7)}")
            elif r < 0.85:
                kws.add(_word(rng, CYRILLIC, 5, 10))
            elif r < 0.93:
                kws.add(_cjk(rng))
            elif r < 0.98:
                kws.add(_word(rng, THAI, 4, 8))
            else:
                kws.add(rng.choice(EMOJI) + rng.choice(EMOJI))
        self.keywords = sorted(kws)
        urls: list[tuple[str, str]] = []
        for _ in range(n_urls):
            host = rng.choice(self.hosts)
            r = rng.random()
            if r < 0.1:
                urls.append((host, "host"))
            elif r < 0.3:
                urls.append((f"{host}/{_word(rng, LATIN)}", "prefix"))
            else:
                path = "/".join(_word(rng, LATIN + "0123456789") for _ in range(rng.randint(1, 3)))
                scheme = rng.choice(["", "http://", "https://"])
                urls.append((f"{scheme}{host}/{path}", "exact"))
        self.urls = urls

    def _evade(self, term: str) -> str:
        r = self.rng.random()
        if r < 0.5 or not term.isascii():
            return term
        if r < 0.6:
            return " ".join(term)
        if r < 0.7:
            return term.upper().translate({ord(c): ord(c) + 0xFEE0 for c in LATIN.upper()})
        if r < 0.8:
            return term[:2] + "\u200b" + term[2:]
        if r < 0.9:
            return term.replace("e", "3").replace("o", "0")
        return term.capitalize()

    def post(self) -> str:
        rng = self.rng
        toks: list[str] = []
        n = rng.randint(10, 70)
        for _ in range(n):
            r = rng.random()
            if r < 0.62:
                w = rng.choice(self.latin)
                toks.append(w.capitalize() if rng.random() < 0.1 else w)
            elif r < 0.74:
                toks.append(rng.choice(self.cyr))
            elif r < 0.77:
                toks.append(rng.choice(self.greek))
            elif r < 0.80:
                toks.append(rng.choice(self.arabic))
            elif r < 0.84:
                toks.append(rng.choice(self.thai))
            elif r < 0.91:
                toks.append(rng.choice(self.cjk))
            elif r < 0.95:
                toks.append(rng.choice(EMOJI))
            elif r < 0.975:
                toks.append(str(rng.randint(0, 99999)))
            else:
                toks.append(rng.choice([",", ".", "!", "?", "-", ":)"]))
        if rng.random() < 0.05:
            toks.insert(rng.randrange(len(toks) + 1), self._evade(rng.choice(self.keywords)))
        if rng.random() < 0.25:
            if rng.random() < 0.3:
                u, _ = rng.choice(self.urls)
                u = u if "/" in u else u + "/"
            else:
                host, word = rng.choice(self.hosts), rng.choice(self.latin)
                u = f"https://{host}/{word}?id={rng.randint(1, 999)}"
            if rng.random() < 0.2:
                u = f"({u})."
            toks.insert(rng.randrange(len(toks) + 1), u)
        return " ".join(toks)

    def batches(self, total_bytes: int, batch_bytes: int) -> Iterator[list[str]]:
        done = 0
        while done < total_bytes:
            batch: list[str] = []
            size = 0
            while size < batch_bytes:
                p = self.post()
                batch.append(p)
                size += len(p.encode("utf-8"))
            done += size
            yield batch


def _mb(texts: list[str]) -> float:
    return sum(len(t.encode("utf-8")) for t in texts) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--megabytes", type=float, default=50.0, help="text to match (MB)")
    ap.add_argument("--re-megabytes", type=float, default=10.0, help="sample for re (MB)")
    ap.add_argument("--re-seconds", type=float, default=60.0, help="time cap for re")
    ap.add_argument("--keywords", type=int, default=10_000)
    ap.add_argument("--urls", type=int, default=100_000)
    ap.add_argument("--batch-kb", type=int, default=512, help="posts per keyword batch (KB)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    t0 = time.perf_counter()
    corpus = Corpus(args.seed, args.keywords, args.urls)
    kidx: KeywordIndex[int] = KeywordIndex()
    t = time.perf_counter()
    kidx.add_many((i, parse_keyword_entry(k)) for i, k in enumerate(corpus.keywords))
    k_build = time.perf_counter() - t
    uidx: UrlIndex[int] = UrlIndex()
    t = time.perf_counter()
    for i, (u, mode) in enumerate(corpus.urls):
        uidx.add(i, parse_url_entry(u, match=mode))
    u_build = time.perf_counter() - t
    print(f"setup: corpus {time.perf_counter() - t0 - k_build - u_build:.1f} s; "
          f"keyword index ({len(kidx)} terms) {k_build:.2f} s; "
          f"URL index ({len(uidx)} entries) {u_build:.2f} s")

    total = int(args.megabytes * 1e6)
    batch_bytes = args.batch_kb * 1000
    mb = 0.0
    chars = non_ascii = 0
    k_cpu = u_cpu = 0.0
    k_wall = u_wall = 0.0
    k_hits = u_found = u_hits = confusables = 0
    sample: list[str] = []
    sample_target = args.re_megabytes * 1e6
    sample_bytes = 0.0
    for batch in corpus.batches(total, batch_bytes):
        bmb = _mb(batch)
        mb += bmb
        for p in batch:
            chars += len(p)
            non_ascii += len(p) - len(p.encode("ascii", "ignore"))
        if sample_bytes < sample_target:
            sample.extend(batch)
            sample_bytes += bmb * 1e6
        c, w = time.process_time(), time.perf_counter()
        results = kidx.match_many(batch)
        k_cpu += time.process_time() - c
        k_wall += time.perf_counter() - w
        k_hits += sum(len(r) for r in results)
        c, w = time.process_time(), time.perf_counter()
        for p in batch:
            for f in extract_urls(p):
                u_found += 1
                for m in uidx.match(f.url):
                    u_hits += 1
                    confusables += m.kind == "confusable"
        u_cpu += time.process_time() - c
        u_wall += time.perf_counter() - w
    print(f"text: {mb:.1f} MB in {chars:,} characters; non-ASCII characters "
          f"{100 * non_ascii / max(chars, 1):.1f}% "
          f"(of UTF-8 bytes: {100 * (mb * 1e6 - (chars - non_ascii)) / (mb * 1e6):.1f}%)")
    k_rate = mb / k_cpu
    print(f"keyword matching (normalise + Aho-Corasick, {len(kidx)} terms): "
          f"{k_rate:.1f} MB/s per core (CPU {k_cpu:.1f} s, wall {k_wall:.1f} s); "
          f"{k_hits:,} matches  [goal >= 20 MB/s]")
    print(f"URL extraction + matching ({len(uidx)} entries): {mb / u_cpu:.1f} MB/s per core "
          f"(CPU {u_cpu:.1f} s, wall {u_wall:.1f} s); {u_found:,} URLs found, "
          f"{u_hits:,} matches ({confusables} confusable)")

    # The peer: a plain re alternation of the same keywords, no normalisation.
    pattern = re.compile(
        r"(?<!\w)(?:" + "|".join(re.escape(k) for k in sorted(corpus.keywords, key=len,
                                                              reverse=True)) + r")(?!\w)",
        re.IGNORECASE,
    )
    done_mb = 0.0
    re_hits = 0
    c = time.process_time()
    deadline = time.perf_counter() + args.re_seconds
    for p in sample:
        re_hits += sum(1 for _ in pattern.finditer(p))
        done_mb += len(p.encode("utf-8")) / 1e6
        if time.perf_counter() > deadline:
            break
    re_cpu = time.process_time() - c
    re_rate = done_mb / re_cpu
    print(f"peer: re alternation of {len(corpus.keywords)} keywords on {done_mb:.1f} MB "
          f"(sample {sample_bytes / 1e6:.1f} MB, cap {args.re_seconds:.0f} s): "
          f"{re_rate:.2f} MB/s per core, {re_hits:,} matches; "
          f"Bastion keyword matching is {k_rate / re_rate:.0f}x faster")

    # Freshness: time from an update to visible in the next match.
    k_lat: list[float] = []
    for i in range(300):
        term = f"freshterm{i}x"
        t = time.perf_counter()
        kidx.add(10_000_000 + i, parse_keyword_entry(term))
        ok = any(m.key == 10_000_000 + i for m in kidx.match(f"a {term} b"))
        k_lat.append(time.perf_counter() - t)
        assert ok
    t = time.perf_counter()
    kidx.remove(10_000_000)
    gone = not kidx.match("a freshterm0x b")
    k_rm = time.perf_counter() - t
    kidx.wait_idle()
    u_lat: list[float] = []
    for i in range(300):
        t = time.perf_counter()
        uidx.add(10_000_000 + i, parse_url_entry(f"fresh{i}.example/x"))
        ok = any(m.key == 10_000_000 + i for m in uidx.match(f"https://fresh{i}.example/x"))
        u_lat.append(time.perf_counter() - t)
        assert ok
    print(f"update to visible: keyword add p50 {1e3 * statistics.median(k_lat):.1f} ms, "
          f"max {1e3 * max(k_lat):.1f} ms (300 adds, background rebuilds among them); "
          f"remove {1e3 * k_rm:.1f} ms (gone: {gone}); URL add p50 "
          f"{1e3 * statistics.median(u_lat):.3f} ms, max {1e3 * max(u_lat):.2f} ms  "
          f"[goal <= 1000 ms]")
    print("(2 shared cores; other engineers' tests run at the same time: figures indicative)")


if __name__ == "__main__":
    main()
