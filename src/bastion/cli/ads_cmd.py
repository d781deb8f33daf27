"""``bastion ads``: trafficking indicators and networks of classified ads (issue 8).

``bastion ads scan [--json] FILE|-`` reads JSON lines, one ad per line (``ad_id``, ``text``,
optional ``title``, ``location``, ``posted_at`` (RFC 3339), ``images`` (paths, relative to the
input file's folder; to the working directory for ``-``), ``pdq`` (hashes)), keeps them in the
main store (the ``ads`` table, shared with ``POST /v1/content``), links them into networks,
and prints one object per ad: ``ad_id``,
``score``, ``lexicon_version``, ``indicators``, ``contacts``, ``network_id`` (and ``notes``,
e.g. images not hashed). ``bastion ads networks [--json]`` prints one object per network.
``bastion ads fit LABELLED.jsonl`` refits the lexicon's weights (needs ``bastion[ads]``).

Exit status: 0; 2 when any input line could not be read (reported on stderr with its line
number; the other lines are still processed) or any image could not be hashed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer

from bastion.cli.options import DataDir
from bastion.config import load_settings
from bastion.errors import BastionError, InvalidInput
from bastion.trafficking.adstore import AdRepository, active_lexicon, ads_dir
from bastion.trafficking.contacts import DEFAULT_REGION
from bastion.trafficking.fit import fit_lexicon, parse_labelled
from bastion.trafficking.lexicon import load_lexicon
from bastion.trafficking.schemas import Ad, AdResult
from bastion.trafficking.service import analyse_ad, photo_hashes, with_photos

#: Characters of one input line; longer lines are reported unreadable.
MAX_INPUT_LINE = 1 << 20
#: Image paths per ad.
MAX_IMAGES = 64
#: Ads stored per write transaction.
SCAN_BATCH = 200

ads_app = typer.Typer(
    name="ads",
    help="Classified ads: disguised contacts, trafficking indicators, ad networks.",
    no_args_is_help=True,
    add_completion=False,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, sort_keys=False) + "\n")


def _lines(source: str) -> Iterator[tuple[int, str]]:
    if source == "-":
        stream = sys.stdin
        for n, line in enumerate(stream, start=1):
            yield n, line
        return
    try:
        with open(source, encoding="utf-8", errors="strict") as fh:
            n = 0
            while True:
                n += 1
                try:
                    line = fh.readline(MAX_INPUT_LINE + 1)
                except UnicodeDecodeError as exc:
                    raise InvalidInput(f"{source}: not UTF-8 near line {n}: {exc.reason}")\
                        from exc
                if not line:
                    return
                if len(line) > MAX_INPUT_LINE and not line.endswith("\n"):
                    # skip the rest of the over-long line
                    while True:
                        rest = fh.readline(MAX_INPUT_LINE)
                        if not rest or rest.endswith("\n"):
                            break
                    yield n, "\x00too-long"
                    continue
                yield n, line
    except OSError as exc:
        raise InvalidInput(f"cannot read {source}: {exc.strerror or exc}") from exc


def _render(result: AdResult) -> str:
    inds = ", ".join(sorted({i.id for i in result.indicators})) or "-"
    contacts = ", ".join(f"{c.kind}:{c.value}" + ("*" if c.disguised else "")
                         for c in result.contacts) or "-"
    return (f"{result.ad_id}\tscore {result.score:.3f}\t{result.network_id}\t"
            f"indicators: {inds}\tcontacts: {contacts}")


@ads_app.command("scan")
def scan_command(
    source: Annotated[str, typer.Argument(help="JSON-lines file of ads, or - for stdin.")],
    as_json: JsonOpt = False,
    data_dir: DataDir = None,
    region: Annotated[str, typer.Option(
        help="Default phone region (ISO 3166 alpha-2) when an ad's location names none."
    )] = DEFAULT_REGION,
    lexicon_path: Annotated[Path | None, typer.Option(
        "--lexicon", help="Lexicon TOML (default: the store's fitted one, else v1).")] = None,
) -> None:
    """Analyse ads (JSON lines), keep them, link them into networks, print the results."""
    from bastion.store.database import open_database

    settings = load_settings(home=data_dir)
    base_dir = Path.cwd() if source == "-" else Path(source).resolve().parent
    problems = 0
    lexicon = load_lexicon(lexicon_path) if lexicon_path else active_lexicon(settings.home)
    db = open_database(settings)
    repo = AdRepository(db)
    with ExitStack() as stack:
        session = None
        in_batch = 0
        for n, line in _lines(source):
            if session is None:
                session = stack.enter_context(db.write())
            if not line.strip():
                continue
            try:
                if line == "\x00too-long":
                    raise InvalidInput(f"line longer than {MAX_INPUT_LINE} characters")
                try:
                    obj = json.loads(line)
                except ValueError as exc:
                    raise InvalidInput(f"not JSON: {exc}") from exc
                ad = Ad.from_json(obj)
                images = obj.get("images", [])
                if not isinstance(images, list) or len(images) > MAX_IMAGES or not all(
                    isinstance(p, str) for p in images
                ):
                    raise InvalidInput(f"'images' must be a list of at most {MAX_IMAGES} paths")
                notes: list[str] = []
                if images:
                    hashes, bad = photo_hashes(images, base_dir=base_dir,
                                               limits=settings.limits)
                    ad = with_photos(ad, hashes)
                    for b in bad:
                        notes.append(f"image {b.path} not scanned: {b.reason}")
                        print(f"bastion ads: line {n}: image {b.path} not scanned: {b.reason}",
                              file=sys.stderr)
                        problems += 1
                kept = repo.get(session, ad.ad_id)
                if kept is not None:
                    result = AdResult(kept.ad_id, kept.score, kept.indicators, kept.contacts,
                                      kept.lexicon_version, kept.network_id,
                                      (*kept.notes, "ad_id already stored; first version kept"))
                else:
                    result = analyse_ad(ad, lexicon, default_region=region)
                    result = AdResult(result.ad_id, result.score, result.indicators,
                                      result.contacts, result.lexicon_version, None,
                                      tuple(notes))
                    result = repo.keep(session, ad, result, source="cli")
                    in_batch += 1
                    if in_batch >= SCAN_BATCH:
                        stack.close()  # commit this batch
                        session, in_batch = None, 0
            except BastionError as exc:
                print(f"bastion ads: line {n}: {exc.message}", file=sys.stderr)
                problems += 1
                continue
            if as_json:
                _print_json(result.to_json())
            else:
                print(_render(result))
        stack.close()
    db.dispose()
    if problems:
        raise typer.Exit(2)


@ads_app.command("networks")
def networks_command(
    as_json: JsonOpt = False,
    data_dir: DataDir = None,
    min_size: Annotated[int, typer.Option(min=1, help="Smallest network shown.")] = 2,
) -> None:
    """Print the networks of the stored ads (largest first in text mode)."""
    from bastion.store.database import open_database

    settings = load_settings(home=data_dir)
    db = open_database(settings)
    try:
        nets = AdRepository(db).networks().summaries(min_size=min_size)
    finally:
        db.dispose()
    if as_json:
        for net in nets:
            _print_json(net.to_json())
        return
    for net in sorted(nets, key=lambda x: (-len(x.ad_ids), x.network_id)):
        span = ""
        if net.first_seen and net.last_seen:
            span = f"{net.first_seen:%Y-%m-%d} .. {net.last_seen:%Y-%m-%d}"
        print(f"{net.network_id}\t{len(net.ad_ids)} ads\t{', '.join(net.cities) or '-'}\t{span}")
        for kind, value, count in net.contacts[:10]:
            print(f"    {kind} {value} ({count} ads)")
        if net.template is not None:
            print(f"    template: {net.template.text[:300]}")


@ads_app.command("fit")
def fit_command(
    labelled: Annotated[Path, typer.Argument(help="JSON lines with text and label (0/1).")],
    as_json: JsonOpt = False,
    data_dir: DataDir = None,
    c: Annotated[float, typer.Option("--c", help="Inverse L2 regularisation strength.")] = 1.0,
    region: Annotated[str, typer.Option(help="Default phone region.")] = DEFAULT_REGION,
    out: Annotated[Path | None, typer.Option(
        help="Write the fitted lexicon here instead of the store's active lexicon.")] = None,
) -> None:
    """Refit the lexicon's weights by logistic regression on labelled ads."""
    settings = load_settings(home=data_dir)
    try:
        with labelled.open(encoding="utf-8") as fh:
            examples, bad = parse_labelled(fh)
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {labelled}: {exc}") from exc
    for n, reason in bad:
        print(f"bastion ads fit: line {n}: {reason}", file=sys.stderr)
    report = fit_lexicon(examples, active_lexicon(settings.home), c=c, default_region=region)
    if out is None:
        try:
            ads_dir(settings.home).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInput(f"cannot use {ads_dir(settings.home)}: {exc}") from exc
    target = out or ads_dir(settings.home) / "lexicon.toml"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(report.lexicon.to_toml(), encoding="utf-8")
    tmp.replace(target)
    if as_json:
        _print_json({**report.to_json(), "written": str(target)})
    else:
        print(f"fitted {report.lexicon.version} on {report.examples} ads "
              f"({report.positives} positive); written to {target}")
        print(f"    intercept {report.intercept[0]:+.3f} -> {report.intercept[1]:+.3f}")
        for k, (p, f) in report.weights.items():
            flag = " (clipped to 0)" if k in report.clipped else (
                " (unseen)" if k in report.unseen else "")
            print(f"    {k}: {p:+.3f} -> {f:+.3f}{flag}")
    if bad:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add the ``ads`` command group to ``app``."""
    app.add_typer(ads_app, name="ads")
