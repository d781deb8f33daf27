"""Recall and false matches of Bastion's robustness variants beside PDQ alone.

Builds a benign evaluation set and measures, for each everyday edit, how often the edited
picture still matches its original in a bank (recall), and how often any picture matches a
bank entry of a *different* picture (false matches), for:

* **PDQ alone**: the query's stored picture, 8 dihedral hashes, against the bank picture's
  stored hash, threshold 31 (what Meta's reference does with ``--dihedral``).
* **Bastion**: every query variant against every bank variant that
  :func:`bastion.signals.robust.compatible` allows, at
  :func:`bastion.signals.robust.pair_threshold` (bank threshold 31); ``stored`` and
  ``trimmed`` query pictures with all 8 dihedral hashes, bands and crops with the original
  only.

Hashes of quality below 50 never match (Meta's recommendation). It also prints, for every
pair kind, the smallest distance between any two unrelated pictures beside the pair's
threshold (the margin that keeps false matches at zero).

Pictures (all public, shipped with packages or in ``../shared/data``, none downloaded):

* scikit-image's sample images bundled inside its wheel (``skimage/data/*.png|jpg``; the
  ones ``skimage.data`` fetches at run time are not used). ``motorcycle_right`` (the stereo
  partner of ``motorcycle_left``) and ``chessboard_GRAY`` (a copy of ``chessboard_RGB``) are
  left out because they are the same picture. Each is edited.
* ``lfw_subset.npy`` (200 small face and non-face patches, 25x25 grey): unedited, as hard
  negatives (aligned faces look alike to a hash).
* ``../shared/data/images``: each distinct picture (``same_picture_as`` ``-`` in
  ``EXPECTED.tsv``) is edited too; the shared edits of the bridge photo are extra queries.

Edits: resize to half, JPEG q50, centre crop 2/3.5/5/7.5/10% per side (3.5 and 7.5 lie
between the bank's crop grid points), black letterbox and pillarbox bars, white screenshot
padding, caption bands over the bottom 10% (white) and 20% (black) and the top 10% (white)
with text-like marks, brightness +30%, greyscale, rotation by 90 degrees, mirror, rotation
by 3 degrees (black corners; also 2 degrees and 4 degrees clockwise, which lie off the bank's
rotation angles). Every edit except the lossless screenshot is saved as JPEG
q90, as a re-upload would be.

Run: ``.venv/bin/python benchmarks/eval_robustness.py`` (about a minute). Writes
``benchmarks/out/eval_robustness.json``. Times are indicative: the machine's 2 cores are
shared with other work.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageEnhance

from bastion.signals.base import MIN_MATCH_QUALITY, Variant
from bastion.signals.pdq import PDQ_THRESHOLD, RGBArray, pdq_dihedral, pdq_hash
from bastion.signals.robust import bank_variants, pair_threshold, query_variants

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / "../shared/data/images"
OUT = REPO / "benchmarks/out"

STORED = Variant()


# --------------------------------------------------------------------------- pictures


def _rgb(im: Image.Image) -> RGBArray:
    return np.asarray(im.convert("RGB"))


def skimage_pictures() -> list[tuple[str, RGBArray]]:
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    skip = {"motorcycle_right.png", "chessboard_GRAY.png"}
    out = []
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".png", ".jpg") or path.name in skip:
            continue
        with Image.open(path) as im:
            out.append((f"skimage/{path.stem}", _rgb(im)))
    return out


def lfw_patches() -> list[tuple[str, RGBArray]]:
    import skimage.data

    arr = np.load(Path(skimage.data.__file__).parent / "lfw_subset.npy")
    grey = np.clip(arr * 255 + 0.5, 0, 255).astype(np.uint8)
    return [(f"lfw/{i:03d}", np.repeat(g[:, :, None], 3, axis=2)) for i, g in enumerate(grey)]


def shared_rows() -> list[dict[str, str]]:
    with (SHARED / "EXPECTED.tsv").open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def shared_pictures() -> tuple[list[tuple[str, RGBArray]], list[tuple[str, str, RGBArray]]]:
    """(distinct pictures, [(edit name, picture it is of, pixels)] for the shared edits)."""
    originals, edits = [], []
    for row in shared_rows():
        with Image.open(SHARED / row["path"]) as im:
            rgb = _rgb(im)
        if row["same_picture_as"] == "-":
            originals.append((f"shared/{row['path']}", rgb))
        else:
            edits.append((f"shared:{row['edit']}", f"shared/{row['same_picture_as']}", rgb))
    return originals, edits


# --------------------------------------------------------------------------- edits


def jpeg(rgb: RGBArray, quality: int = 90) -> RGBArray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return _rgb(im)


def crop(per_side: float) -> Callable[[RGBArray], RGBArray]:
    def edit(rgb: RGBArray) -> RGBArray:
        h, w = rgb.shape[:2]
        dy, dx = round(h * per_side), round(w * per_side)
        return jpeg(rgb[dy : h - dy, dx : w - dx])

    return edit


def pad(
    rgb: RGBArray, t: float, b: float, left: float, r: float, colour: tuple[int, int, int]
) -> RGBArray:
    h, w = rgb.shape[:2]
    pt, pb, pl, pr = round(h * t), round(h * b), round(w * left), round(w * r)
    out = np.empty((h + pt + pb, w + pl + pr, 3), np.uint8)
    out[:] = colour
    out[pt : pt + h, pl : pl + w] = rgb
    return out


def caption(where: str, frac: float, colour: int) -> Callable[[RGBArray], RGBArray]:
    """A band over ``frac`` of the height, with rows of text-like marks of the other shade."""

    def edit(rgb: RGBArray) -> RGBArray:
        out = rgb.copy()
        h, w = rgb.shape[:2]
        k = max(1, round(h * frac))
        band = np.full((k, w, 3), colour, np.uint8)
        rng = np.random.default_rng(h * 31 + w)
        ink = 255 - colour
        line_h = max(3, k // 3)
        for top in range(k // 6, k - line_h // 2, line_h + max(1, k // 8)):
            x = int(w * 0.05)
            while x < w * 0.95:
                glyph_w = int(rng.integers(max(2, w // 120), max(3, w // 50)))
                glyph = rng.random((min(line_h, k - top), glyph_w)) < 0.55
                band[top : top + glyph.shape[0], x : x + glyph_w][glyph] = ink
                x += glyph_w + int(rng.integers(1, max(2, w // 100)))
                if rng.random() < 0.15:
                    x += max(2, w // 40)  # a space between words
        if where == "bottom":
            out[h - k :] = band
        else:
            out[:k] = band
        return jpeg(out)

    return edit


def rotate(degrees: float) -> Callable[[RGBArray], RGBArray]:
    def edit(rgb: RGBArray) -> RGBArray:
        return jpeg(np.asarray(Image.fromarray(rgb).rotate(degrees, Image.Resampling.BICUBIC)))

    return edit


def resize_half(rgb: RGBArray) -> RGBArray:
    h, w = rgb.shape[:2]
    im = Image.fromarray(rgb).resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS)
    return jpeg(np.asarray(im))


def brightness(rgb: RGBArray) -> RGBArray:
    return jpeg(np.asarray(ImageEnhance.Brightness(Image.fromarray(rgb)).enhance(1.3)))


def greyscale(rgb: RGBArray) -> RGBArray:
    return jpeg(_rgb(Image.fromarray(rgb).convert("L")))


EDITS: dict[str, Callable[[RGBArray], RGBArray]] = {
    "resize-half": resize_half,
    "jpeg-q50": lambda a: jpeg(a, 50),
    "crop-2%": crop(0.02),
    "crop-3.5%": crop(0.035),
    "crop-5%": crop(0.05),
    "crop-7.5%": crop(0.075),
    "crop-10%": crop(0.10),
    "letterbox-black": lambda a: jpeg(pad(a, 0.15, 0.15, 0, 0, (0, 0, 0))),
    "pillarbox-black": lambda a: jpeg(pad(a, 0, 0, 0.2, 0.2, (0, 0, 0))),
    "screenshot-white": lambda a: pad(a, 0.08, 0.2, 0.05, 0.05, (255, 255, 255)),
    "caption-bottom-10%-white": caption("bottom", 0.10, 255),
    "caption-bottom-20%-black": caption("bottom", 0.20, 0),
    "caption-top-10%-white": caption("top", 0.10, 255),
    "brightness+30%": brightness,
    "greyscale": greyscale,
    "rotate-90": lambda a: jpeg(np.ascontiguousarray(np.rot90(a))),
    "mirror": lambda a: jpeg(np.ascontiguousarray(a[:, ::-1])),
    "rotate-3deg": rotate(3.0),
    "rotate-2deg": rotate(2.0),
    "rotate-4deg-clockwise": rotate(-4.0),
}


# --------------------------------------------------------------------------- hashing


def _bits(hex_value: str) -> npt.NDArray[np.uint8]:
    return np.frombuffer(bytes.fromhex(hex_value), dtype=np.uint8)


def label(v: Variant) -> str:
    return v.kind if v.detail is None else f"{v.kind}:{v.detail}"


@dataclass
class Side:
    """Hashes of one side, one row each, grouped by item (rows of an item are contiguous)."""

    bits: list[npt.NDArray[np.uint8]] = field(default_factory=list)
    quality: list[int] = field(default_factory=list)
    variant: list[Variant] = field(default_factory=list)
    item: list[int] = field(default_factory=list)

    def add(self, item: int, variant: Variant, hex_value: str, quality: int) -> None:
        self.bits.append(_bits(hex_value))
        self.quality.append(quality)
        self.variant.append(variant)
        self.item.append(item)


def hash_query(side: Side, item: int, rgb: RGBArray) -> None:
    hashes, quality = pdq_dihedral(rgb)
    for value in hashes.values():
        side.add(item, STORED, value, quality)
    for variant, pixels in query_variants(rgb):
        if variant.kind == "trimmed":
            hashes, quality = pdq_dihedral(pixels)
            for value in hashes.values():
                side.add(item, variant, value, quality)
        else:
            h = pdq_hash(pixels)
            side.add(item, variant, h.value, h.quality)


def hash_bank(side: Side, item: int, rgb: RGBArray) -> None:
    h = pdq_hash(rgb)
    side.add(item, STORED, h.value, h.quality)
    for variant, pixels in bank_variants(rgb):
        h = pdq_hash(pixels)
        side.add(item, variant, h.value, h.quality)


def distances(q: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """Hamming distances (nq x nb) between rows of packed 256-bit hashes."""
    qw = q.view(np.uint64)
    bw = b.view(np.uint64)
    out = np.zeros((len(qw), len(bw)), np.int16)
    for k in range(4):
        out += np.bitwise_count(qw[:, k, None] ^ bw[None, :, k]).astype(np.int16)
    return out


# --------------------------------------------------------------------------- cost


def timing(samples: list[tuple[str, RGBArray]], repeat: int = 5) -> dict[str, float]:
    """Median CPU milliseconds per picture: PDQ alone (8 dihedral hashes), Bastion's query side
    (that plus border search, variants and their hashes), border search alone, and the bank
    side (stored hash plus every bank variant)."""

    def per_picture(fn: Callable[[RGBArray], object]) -> float:
        runs = []
        for _ in range(repeat):
            t = time.process_time()  # CPU time: the machine's cores are shared
            for _, rgb in samples:
                fn(rgb)
            runs.append((time.process_time() - t) * 1000 / len(samples))
        return float(np.median(runs))

    from bastion.signals.borders import find_content_box

    return {
        "pdq_alone_query_ms": per_picture(lambda a: pdq_dihedral(a)),
        "bastion_query_ms": per_picture(lambda a: hash_query(Side(), 0, a)),
        "border_search_ms": per_picture(find_content_box),
        "bastion_bank_ms": per_picture(lambda a: hash_bank(Side(), 0, a)),
    }


# --------------------------------------------------------------------------- evaluation


def main() -> int:
    t0 = time.perf_counter()
    sk = skimage_pictures()
    shared, shared_edits = shared_pictures()
    faces = lfw_patches()
    edited = sk + shared
    pictures = edited + faces
    names = [n for n, _ in pictures]
    index = {n: i for i, n in enumerate(names)}

    bank = Side()
    t = time.perf_counter()
    for i, (_, rgb) in enumerate(pictures):
        hash_bank(bank, i, rgb)
    bank_s = time.perf_counter() - t

    # Queries: each picture unedited, each edited picture's edits, the shared edits.
    queries: list[tuple[str, int]] = []  # (edit, picture index)
    query = Side()
    t = time.perf_counter()
    for i, (_, rgb) in enumerate(pictures):
        hash_query(query, len(queries), rgb)
        queries.append(("unedited", i))
    for edit, fn in EDITS.items():
        for name, rgb in edited:
            if min(rgb.shape[:2]) < 64:
                continue
            hash_query(query, len(queries), fn(rgb))
            queries.append((edit, index[name]))
    for edit, of, rgb in shared_edits:
        hash_query(query, len(queries), rgb)
        queries.append((edit, index[of]))
    query_s = time.perf_counter() - t

    qbits, bbits = np.stack(query.bits), np.stack(bank.bits)
    dist = distances(qbits, bbits)
    qlab = [label(v) for v in query.variant]
    blab = [label(v) for v in bank.variant]
    qlabels, blabels = sorted(set(qlab)), sorted(set(blab))
    qli = np.array([qlabels.index(x) for x in qlab])
    bli = np.array([blabels.index(x) for x in blab])
    qrep = {label(v): v for v in query.variant}
    brep = {label(v): v for v in bank.variant}

    # Threshold per (query label, bank label); -1 = never compared.
    table = np.full((len(qlabels), len(blabels)), -1, np.int16)
    for a, ql in enumerate(qlabels):
        for b, bl in enumerate(blabels):
            th = pair_threshold(qrep[ql], brep[bl], PDQ_THRESHOLD)
            table[a, b] = -1 if th is None else th
    ok_q = np.array(query.quality) >= MIN_MATCH_QUALITY
    ok_b = np.array(bank.quality) >= MIN_MATCH_QUALITY
    thresh = table[qli[:, None], bli[None, :]]
    usable = ok_q[:, None] & ok_b[None, :]
    bastion_hit = usable & (thresh >= 0) & (dist <= thresh)
    pdq_rows = qli == qlabels.index("stored")
    pdq_cols = bli == blabels.index("stored")
    pdq_hit = usable & pdq_rows[:, None] & pdq_cols[None, :] & (dist <= PDQ_THRESHOLD)

    # Reduce rows to query items and columns to bank pictures.
    qitem, bitem = np.array(query.item), np.array(bank.item)
    qstarts = np.flatnonzero(np.r_[True, qitem[1:] != qitem[:-1]])
    bstarts = np.flatnonzero(np.r_[True, bitem[1:] != bitem[:-1]])

    def per_item(hit: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        rows = np.logical_or.reduceat(hit, qstarts, axis=0)
        return np.logical_or.reduceat(rows, bstarts, axis=1)

    bastion_items, pdq_items = per_item(bastion_hit), per_item(pdq_hit)
    truth = np.array([p for _, p in queries])
    own = truth[:, None] == np.arange(len(pictures))[None, :]
    # Pictures whose own stored hash is below quality 50 can never match: not counted.
    matchable = np.array(
        [bank.quality[bstarts[p]] >= MIN_MATCH_QUALITY for _, p in queries], dtype=bool
    )

    # Which pair kind found each true match (first compatible pair at its threshold).
    recall: dict[str, dict[str, Any]] = {}
    edits_order = ["unedited", *EDITS, *sorted({e for e, _, _ in shared_edits})]
    for edit in edits_order:
        rows = [
            k for k, (e, p) in enumerate(queries) if e == edit and matchable[k] and p < len(edited)
        ]
        if not rows:
            continue
        via: dict[str, int] = defaultdict(int)
        for k in rows:
            p = queries[k][1]
            r0, r1 = qstarts[k], (qstarts[k + 1] if k + 1 < len(qstarts) else len(qitem))
            c0, c1 = bstarts[p], (bstarts[p + 1] if p + 1 < len(bstarts) else len(bitem))
            block = bastion_hit[r0:r1, c0:c1]
            if block.any():
                i, j = np.argwhere(block)[0]
                via[f"{qlab[r0 + i]}~{blab[c0 + j]}"] += 1
        missed = [names[queries[k][1]] for k in rows if not bastion_items[k, queries[k][1]]]
        recall[edit] = {
            "missed": missed,
            "n": len(rows),
            "pdq": int(pdq_items[rows, truth[rows]].sum()),
            "bastion": int(bastion_items[rows, truth[rows]].sum()),
            "via": dict(sorted(via.items(), key=lambda kv: -kv[1])),
        }

    # False matches: a query item against a bank picture it is not an edit of.
    false_pdq = int((pdq_items & ~own).sum())
    false_bastion = int((bastion_items & ~own).sum())
    unrelated_pairs = int((~own).sum())
    false_examples = [
        {"query": f"{queries[k][0]} of {names[queries[k][1]]}", "bank": names[p]}
        for k, p in np.argwhere(bastion_items & ~own)[:20]
    ]

    # Smallest unrelated distance per pair (quality >= 50 on both sides), per pair of
    # variant labels (JSON) and per pair of kinds (printed), over the whole set and over
    # ../shared/data/images alone.
    unrelated = truth[qitem][:, None] != bitem[None, :]
    is_shared = np.array([n.startswith("shared/") for n in names])
    shared_pair = is_shared[truth[qitem]][:, None] & is_shared[bitem][None, :]
    qkind = np.array([v.kind for v in query.variant])
    bkind = np.array([v.kind for v in bank.variant])

    def closest(mask: npt.NDArray[np.bool_]) -> tuple[int, list[str]] | None:
        if not mask.any():
            return None
        d = np.where(mask, dist, 999)
        i, j = np.unravel_index(np.argmin(d), d.shape)
        who = f"{queries[qitem[i]][0]} of {names[queries[qitem[i]][1]]}"
        return int(d[i, j]), [who, names[bitem[j]]]

    margin: list[dict[str, Any]] = []
    for a, ql in enumerate(qlabels):
        for b, bl in enumerate(blabels):
            th = int(table[a, b])
            mask = (qli == a)[:, None] & (bli == b)[None, :] & usable & unrelated
            found = closest(mask) if th >= 0 else None
            if found is not None:
                margin.append(
                    {
                        "pair": f"{ql}~{bl}",
                        "threshold": th,
                        "min_unrelated": found[0],
                        "closest": found[1],
                        "pairs": int(mask.sum()),
                    }
                )
    kinds: list[dict[str, Any]] = []
    compared = (thresh >= 0) & usable & unrelated
    for qk in sorted(set(qkind)):
        for bk in sorted(set(bkind)):
            mask = compared & (qkind == qk)[:, None] & (bkind == bk)[None, :]
            found = closest(mask)
            if found is None:
                continue
            found_shared = closest(mask & shared_pair)
            kinds.append(
                {
                    "pair_kind": f"{qk}~{bk}",
                    "threshold": sorted({int(x) for x in thresh[mask]}),
                    "min_unrelated": found[0],
                    "closest": found[1],
                    "min_unrelated_shared_images": None
                    if found_shared is None
                    else found_shared[0],
                    "hash_pairs": int(mask.sum()),
                }
            )

    per_picture = np.bincount(bitem, minlength=len(pictures))
    n_bank_variants = float(per_picture[: len(edited)].mean())
    per_query = np.bincount(qitem, minlength=len(queries))
    all_rows = [k for k, (e, p) in enumerate(queries) if e != "unedited" and matchable[k]]
    overall = {
        "n": len(all_rows),
        "pdq": int(pdq_items[all_rows, truth[all_rows]].sum()),
        "bastion": int(bastion_items[all_rows, truth[all_rows]].sum()),
    }
    report = {
        "pictures": {"edited": len(edited), "negatives_only": len(faces)},
        "queries": len(queries),
        "unrelated_item_pairs": unrelated_pairs,
        "false_matches": {"pdq": false_pdq, "bastion": false_bastion},
        "false_examples": false_examples,
        "recall": recall,
        "recall_all_edits": overall,
        "min_unrelated_distance_by_pair_kind": kinds,
        "min_unrelated_distance_by_variant_pair": margin,
        "bank_hashes_per_edited_picture_mean": round(n_bank_variants, 2),
        "query_hash_rows_per_query_mean": round(float(per_query.mean()), 2),
        "seconds": {
            "bank_hashing": round(bank_s, 2),
            "query_edit_and_hashing": round(query_s, 2),
            "total": round(time.perf_counter() - t0, 2),
        },
    }
    sample = [p for p in edited if min(p[1].shape[:2]) >= 256][:12]
    sample += [(f"{n} letterboxed", EDITS["letterbox-black"](a)) for n, a in sample[:4]]
    cost = timing(sample)
    report["cost_ms_per_picture"] = {k: round(v, 2) for k, v in cost.items()}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "eval_robustness.json").write_text(json.dumps(report, indent=2) + "\n")

    print(
        f"{len(edited)} edited pictures + {len(faces)} negatives; {len(queries)} queries; "
        f"{unrelated_pairs} unrelated (query, bank picture) pairs"
    )
    print(f"\n{'edit':34} {'n':>4} {'PDQ alone':>10} {'Bastion':>10}  matched via")
    for edit, r in recall.items():
        via_text = ", ".join(f"{k} {v}" for k, v in list(r["via"].items())[:3])
        print(
            f"{edit:34} {r['n']:4d} {r['pdq'] / r['n']:10.0%} {r['bastion'] / r['n']:10.0%}  "
            f"{via_text}"
        )
    print(
        f"{'all edits':34} {overall['n']:4d} {overall['pdq'] / overall['n']:10.0%} "
        f"{overall['bastion'] / overall['n']:10.0%}"
    )
    print(f"\nfalse matches: PDQ alone {false_pdq}, Bastion {false_bastion}")
    for ex in false_examples:
        print(f"  {ex['query']} -> {ex['bank']}")
    print(
        f"\n{'pair kind (query~bank)':22} {'threshold':>9} {'min unrelated':>13} "
        f"{'(shared only)':>13}  closest unrelated pair"
    )
    for m in sorted(kinds, key=lambda m: m["min_unrelated"]):
        th_text = ",".join(str(x) for x in m["threshold"])
        shared_min = m["min_unrelated_shared_images"]
        sh_text = "-" if shared_min is None else str(shared_min)
        print(
            f"{m['pair_kind']:22} {th_text:>9} {m['min_unrelated']:13d} {sh_text:>13}  "
            f"{m['closest'][0]} ~ {m['closest'][1]}"
        )
    print("(per variant pair, e.g. each crop scale: see the JSON)")
    print(
        f"\nPDQs per edited bank picture: {n_bank_variants:.2f}; seconds: bank {bank_s:.1f}, "
        f"queries {query_s:.1f} (indicative: 2 shared cores)"
    )
    print(
        f"CPU cost per picture ({len(sample)} pictures, 4 letterboxed; median of 5): PDQ alone "
        f"{cost['pdq_alone_query_ms']:.1f} ms, Bastion query side "
        f"{cost['bastion_query_ms']:.1f} ms "
        f"({cost['bastion_query_ms'] / cost['pdq_alone_query_ms']:.1f}x; border search "
        f"{cost['border_search_ms']:.2f} ms), Bastion bank side {cost['bastion_bank_ms']:.1f} ms"
    )
    print(f"wrote {OUT / 'eval_robustness.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
