"""Issue 7 in the pipeline: ``POST /v1/content`` with ``text`` and ``links`` is matched
against URL and keyword lists; matches appear in the verdict like hash matches."""

from __future__ import annotations

from tests.api.conftest import BRIDGE, Api

from bastion.banks import service as banks
from bastion.banks.schemas import BankCreate


def _lists(api: Api) -> None:
    with api.db.write() as session:
        banks.create(session, data=BankCreate(name="iwf-urls", label="csam"))
        banks.add_entry(session, name="iwf-urls", fields={
            "signal_type": "url", "value": "bad.example/gallery", "match": "prefix"})
        banks.create(session, data=BankCreate(name="keywords", label="csam"))
        banks.add_entry(session, name="keywords", fields={
            "signal_type": "keyword", "value": "example"})


def _wait_for_lists(api: Api) -> None:
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        r = api.client.post("/v1/content", headers=api.h("content:submit"),
                            json={"content_id": f"probe-{time.monotonic()}",
                                  "text": "exa\u200bmple"})
        if r.json().get("status") == "match":
            return
        time.sleep(0.1)
    raise AssertionError("lists not visible")


def test_text_only_item_matches_urls_and_keywords_with_spans(api: Api) -> None:
    _lists(api)
    _wait_for_lists(api)
    text = "new pics at hxxp://BAD[.]example/gallery/7 and ｅｘａｍｐｌｅ"
    r = api.client.post("/v1/content", headers=api.h("content:submit"),
                        json={"content_id": "post-1", "text": text,
                              "links": ["https://bad.example/gallery/9"]})
    assert r.status_code == 200, r.text
    v = r.json()
    assert v["status"] == "match"
    urls = [m for m in v["matches"] if m["signal_type"] == "url"]
    assert len(urls) == 2 and {m["bank"] for m in urls} == {"iwf-urls"}  # text and link
    spans = [m["span"] for m in v["matches"] if m["signal_type"] == "keyword"]
    assert [text.index("ｅｘａｍｐｌｅ"), len(text)] in spans  # the original characters
    url = next(m for m in v["matches"] if m["signal_type"] == "url" and "span" in m)
    assert url["canonical"].startswith("http://bad.example/gallery/7")
    # A retry is a replay; the same id with other text is a conflict.
    again = api.client.post("/v1/content", headers=api.h("content:submit"),
                            json={"content_id": "post-1", "text": text,
                                  "links": ["https://bad.example/gallery/9"]})
    assert again.status_code == 200 and again.json()["replayed"] is True
    other = api.client.post("/v1/content", headers=api.h("content:submit"),
                            json={"content_id": "post-1", "text": "something else"})
    assert other.status_code == 409


def test_file_with_caption_gets_hash_and_text_matches(api: Api) -> None:
    _lists(api)
    _wait_for_lists(api)
    r = api.client.post("/v1/content", headers=api.h("content:submit"),
                        files={"file": ("x.jpg", BRIDGE.read_bytes())},
                        data={"content_id": "photo-1", "text": "an EXAMPLE caption"})
    v = r.json()
    assert {m["signal_type"] for m in v["matches"]} >= {"pdq", "keyword"}


def test_clean_text_is_no_match_and_nothing_at_all_is_refused(api: Api) -> None:
    r = api.client.post("/v1/content", headers=api.h("content:submit"),
                        json={"content_id": "post-2", "text": "hello there"})
    assert r.status_code == 200 and r.json()["status"] == "no_match"
    r = api.client.post("/v1/content", headers=api.h("content:submit"),
                        json={"content_id": "post-3"})
    assert r.status_code == 422
