"""The shared template of a group of ads, with the varying slots marked (InfoShield-style).

Reimplemented from the description in Lee, Vajiac, Jain, Faloutsos et al., "InfoShield:
Generalizable Information-Theoretic Human-Trafficking Detection", IEEE ICDE 2021 (no code was
consulted):
InfoShield-Fine aligns the documents of a cluster into a multiple sequence alignment, keeps as
the *template* the tokens the documents share and marks as *slots* the places where they
differ, and uses the minimum description length (MDL) principle to decide which documents are
explained by the template (encoding a document as "template + edits" is cheaper than encoding
it on its own).

What this module does, simplified:

1. Tokens: ``\\w+`` words and single punctuation marks, compared casefolded.
2. Centre-star alignment: the centre is the document with the highest summed token-set Jaccard
   similarity to the others (lowest index on ties); every other document is aligned to it by
   an edit-distance (Levenshtein) alignment over tokens, O(n*m) per pair.
3. A centre token is *constant* if at least ``constant_share`` of the documents (the centre
   included) have the same token aligned to it; a gap between centre tokens is a slot if at
   least ``constant_share`` of the documents insert tokens there. Non-constant positions and
   slot gaps next to each other merge into one slot.
4. MDL fit, per document: cost alone = ``len(doc) * log2(V + 1)`` bits (V = vocabulary of the
   group); cost with the template = ``log2(4)`` bits per alignment operation plus
   ``log2(V + 1)`` bits per substituted or inserted token. Documents whose cost with the
   template is not lower are reported as ``outliers``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_PUNCT_RE = re.compile(r"[^\w\s]")
#: Tokens the next token is written against (no space after them).
_OPENERS = "([{$#@"
#: Tokens per document considered (the rest is ignored for the template).
MAX_TOKENS = 400
#: Distinct example values shown per slot.
SLOT_EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class Slot:
    """A varying place in a template: its number (1-based) and the most common values."""

    number: int
    examples: tuple[tuple[str, int], ...]

    def to_json(self) -> dict[str, Any]:
        """``{"slot", "examples": [{"value", "ads"}]}``."""
        return {"slot": self.number,
                "examples": [{"value": v, "ads": n} for v, n in self.examples]}


@dataclass(frozen=True, slots=True)
class Template:
    """A group's template: ``parts`` are constant tokens (str) or slot numbers (int);
    ``text`` renders them with ``[SLOT n]``; ``ads`` how many documents were aligned;
    ``outliers`` the ids of those the template does not explain (MDL)."""

    parts: tuple[str | int, ...]
    slots: tuple[Slot, ...]
    ads: int
    outliers: tuple[str, ...]

    @property
    def text(self) -> str:
        """The template as text, slots shown as ``[SLOT n]``."""
        return "".join(f"[SLOT {p}]" if isinstance(p, int) else p for p in self.pieces())

    def pieces(self) -> list[str | int]:
        """The template as display pieces: constant text and slot numbers, in order.
        Tokens are joined with spaces, except none before punctuation and none after an
        opening bracket or ``$#@``; joining the pieces with ``[SLOT n]`` for each number
        gives :attr:`text`."""
        out: list[str | int] = []
        prev: str | int | None = None
        for p in self.parts:
            space = prev is not None and not (
                isinstance(prev, str) and prev in _OPENERS)
            if isinstance(p, str) and _PUNCT_RE.fullmatch(p) and p not in _OPENERS:
                space = False
            sep = " " if space else ""
            if isinstance(p, int):
                if sep:
                    out.append(sep)
                out.append(p)
            else:
                out.append(sep + p)
            prev = p
        merged: list[str | int] = []
        for q in out:
            if isinstance(q, str) and merged and isinstance(merged[-1], str):
                merged[-1] += q
            else:
                merged.append(q)
        return merged

    def to_json(self) -> dict[str, Any]:
        """``{"text", "slots", "ads", "outliers"}``."""
        return {
            "text": self.text,
            "slots": [s.to_json() for s in self.slots],
            "ads": self.ads,
            "outliers": list(self.outliers),
        }


def tokenize(text: str) -> list[str]:
    """Template tokens of ``text``: words and single punctuation marks, in order."""
    return _TOKEN_RE.findall(text)[:MAX_TOKENS]


# alignment operations
_MATCH, _SUB, _DEL, _INS = 0, 1, 2, 3


def align(center: Sequence[int], doc: Sequence[int]) -> list[tuple[int, int, int]]:
    """Edit-distance alignment of ``doc`` to ``center`` (token ids).

    Returns ``(op, i, j)`` in order: ``op`` is match, substitution, deletion (centre token
    ``i`` has no counterpart) or insertion (doc token ``j`` before centre token ``i``).
    Unit costs; ties prefer match/substitution, then deletion.
    """
    n, m = len(center), len(doc)
    # strip the common prefix and suffix (cheap, and typical for templated text)
    p = 0
    while p < n and p < m and center[p] == doc[p]:
        p += 1
    q = 0
    while q < n - p and q < m - p and center[n - 1 - q] == doc[m - 1 - q]:
        q += 1
    a, b = center[p : n - q], doc[p : m - q]
    na, nb = len(a), len(b)
    prev = list(range(nb + 1))
    back: list[bytearray] = [bytearray([_INS] * (nb + 1))]
    for i in range(1, na + 1):
        cur = [i] + [0] * nb
        row = bytearray(nb + 1)
        row[0] = _DEL
        ai = a[i - 1]
        for j in range(1, nb + 1):
            diag = prev[j - 1] + (0 if ai == b[j - 1] else 1)
            up = prev[j] + 1
            left = cur[j - 1] + 1
            if diag <= up and diag <= left:
                cur[j] = diag
                row[j] = _MATCH if ai == b[j - 1] else _SUB
            elif up <= left:
                cur[j] = up
                row[j] = _DEL
            else:
                cur[j] = left
                row[j] = _INS
        back.append(row)
        prev = cur
    ops: list[tuple[int, int, int]] = []
    i, j = na, nb
    while i > 0 or j > 0:
        op = back[i][j] if i > 0 else _INS
        if op in (_MATCH, _SUB):
            ops.append((op, p + i - 1, p + j - 1))
            i -= 1
            j -= 1
        elif op == _DEL:
            ops.append((_DEL, p + i - 1, -1))
            i -= 1
        else:
            ops.append((_INS, p + i, p + j - 1))
            j -= 1
    ops.reverse()
    head = [(_MATCH, k, k) for k in range(p)]
    tail = [(_MATCH, n - q + k, m - q + k) for k in range(q)]
    return head + ops + tail


def build_template(
    texts: Sequence[str], ids: Sequence[str] | None = None, *, constant_share: float = 0.5
) -> Template:
    """Align ``texts`` and return their template (see the module docstring).

    ``ids`` name the texts in ``outliers`` (default: their indexes as strings). Raises
    ValueError for fewer than one text or a ``constant_share`` outside (0, 1].
    """
    if not texts:
        raise ValueError("build_template needs at least one text")
    if not 0.0 < constant_share <= 1.0:
        raise ValueError("constant_share must be in (0, 1]")
    names = list(ids) if ids is not None else [str(i) for i in range(len(texts))]
    docs_tok = [tokenize(t) for t in texts]
    vocab: dict[str, int] = {}
    docs = [[vocab.setdefault(t.casefold(), len(vocab)) for t in d] for d in docs_tok]
    sets = [set(d) for d in docs]
    best, best_sim = 0, -1.0
    for i, si in enumerate(sets):
        sim = sum(len(si & sj) / max(1, len(si | sj)) for j, sj in enumerate(sets) if j != i)
        if sim > best_sim:
            best, best_sim = i, sim
    center = docs[best]
    nc = len(center)
    n_docs = len(docs)
    matched = [1] * nc  # the centre matches itself
    gap_docs = [0] * (nc + 1)
    # per document: slot text at each centre position / gap
    pos_vals: list[list[str]] = [[] for _ in range(nc)]
    gap_vals: list[list[str]] = [[] for _ in range(nc + 1)]
    bits_token = math.log2(len(vocab) + 1)
    bits_op = 2.0
    outliers: list[str] = []
    for d, doc in enumerate(docs):
        if d == best:
            pos_vals_d: list[list[str]] = [[docs_tok[d][k]] for k in range(nc)]
            gaps_d: list[list[str]] = [[] for _ in range(nc + 1)]
        else:
            pos_vals_d = [[] for _ in range(nc)]
            gaps_d = [[] for _ in range(nc + 1)]
            cost = 0.0
            for op, i, j in align(center, doc):
                cost += bits_op
                if op == _MATCH:
                    matched[i] += 1
                    pos_vals_d[i].append(docs_tok[d][j])
                elif op == _SUB:
                    cost += bits_token
                    pos_vals_d[i].append(docs_tok[d][j])
                elif op == _INS:
                    cost += bits_token
                    gaps_d[i].append(docs_tok[d][j])
            if cost >= len(doc) * bits_token:
                outliers.append(names[d])
        for k in range(nc):
            pos_vals[k].append(" ".join(pos_vals_d[k]))
        for g in range(nc + 1):
            if gaps_d[g]:
                gap_docs[g] += 1
            gap_vals[g].append(" ".join(gaps_d[g]))
    need = constant_share * n_docs
    parts: list[str | int] = []
    slot_values: list[list[str]] = []  # per slot, per document
    open_slot = False

    def extend_slot(values: list[str]) -> None:
        nonlocal open_slot
        if not open_slot:
            slot_values.append([""] * n_docs)
            parts.append(len(slot_values))
            open_slot = True
        cur = slot_values[-1]
        for k, v in enumerate(values):
            if v:
                cur[k] = f"{cur[k]} {v}".strip()

    for k in range(nc + 1):
        if gap_docs[k] and gap_docs[k] >= need:
            extend_slot(gap_vals[k])
        if k == nc:
            break
        if matched[k] >= need:
            parts.append(docs_tok[best][k])
            open_slot = False
        else:
            extend_slot(pos_vals[k])
    slots = tuple(
        Slot(n + 1, tuple(Counter(v for v in vals if v).most_common(SLOT_EXAMPLES)))
        for n, vals in enumerate(slot_values)
    )
    return Template(tuple(parts), slots, n_docs, tuple(outliers))
