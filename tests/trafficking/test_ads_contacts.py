"""Contact extraction: disguised phones (each row with its E.164 answer), non-phones, e-mail,
handles, URLs, and properties of the extractor."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.errors import InvalidInput, LimitExceeded
from bastion.trafficking.contacts import (
    extract_contacts,
    extract_phones,
    non_phone_spans,
    region_for_location,
)

# (text, region, E.164, disguised) — reserved fictional ranges only (US 555-0100..0199,
# UK Ofcom drama numbers).
PHONE_ROWS = [
    ("call 202-555-0143 now", "US", "+12025550143", False),
    ("(202) 555-0143", "US", "+12025550143", False),
    ("202.555.0143", "US", "+12025550143", False),
    ("+1 202 555 0143", "US", "+12025550143", False),
    ("1-202-555-0143", "US", "+12025550143", False),
    ("two0two 5five5 0one4three", "US", "+12025550143", True),
    ("two zero two five five five zero one four three", "US", "+12025550143", True),
    ("TWO zero TWO 555 0143", "US", "+12025550143", True),
    ("two oh two 555 oh one four three", "US", "+12025550143", True),
    ("two-zero-two-five-five-five-zero-one-four-three", "US", "+12025550143", True),
    ("2O2.555.O143", "US", "+12025550143", True),
    ("2O2-555-Ol43", "US", "+12025550143", True),
    ("2O2-555-OI43", "US", "+12025550143", True),
    ("2 0 2 5 5 5 0 1 4 3", "US", "+12025550143", True),
    ("2*0*2*5*5*5*0*1*4*3", "US", "+12025550143", True),
    ("202**555**0143", "US", "+12025550143", True),
    ("202_555_0143", "US", "+12025550143", True),
    ("2 0 2 / 5 5 5 / 0 1 4 3", "US", "+12025550143", True),
    ("２０２ ５５５ ０１４３", "US", "+12025550143", True),
    ("𝟐𝟎𝟐-𝟓𝟓𝟓-𝟎𝟏𝟒𝟑", "US", "+12025550143", True),
    ("٢٠٢٥٥٥٠١٤٣", "US", "+12025550143", True),
    ("②⓪② ⑤⑤⑤ ⓪①④③", "US", "+12025550143", True),
    ("2️⃣0️⃣2️⃣5️⃣5️⃣5️⃣0️⃣1️⃣4️⃣3️⃣", "US", "+12025550143", True),
    ("call 202 555\n0143 to book", "US", "+12025550143", True),
    ("2\u200b0\u200b2\u200b5\u200b5\u200b5\u200b0\u200b1\u200b4\u200b3", "US",
     "+12025550143", True),
    ("twо zero twо 555 0143", "US", "+12025550143", True),  # Cyrillic о in "two"
    ("713.555.0199", "US", "+17135550199", False),
    ("020 7946 0143", "GB", "+442079460143", False),
    ("+44 20 7946 0143", "US", "+442079460143", False),
    ("+44 (0) 20 7946 0999", "GB", "+442079460999", False),
    ("zero two zero seven nine four six zero one four three", "GB", "+442079460143", True),
    ("0113 496 0123", "GB", "+441134960123", False),
    ("O2O 7946 Ol43", "GB", "+442079460143", True),
]


@pytest.mark.parametrize(("text", "region", "e164", "disguised"), PHONE_ROWS)
def test_phone_forms(text: str, region: str, e164: str, disguised: bool) -> None:
    phones = [c for c in extract_contacts(text, region=region) if c.kind == "phone"]
    assert [c.value for c in phones] == [e164]
    c = phones[0]
    assert c.disguised is disguised
    assert text[c.span[0] : c.span[1]] == c.raw
    assert any(ch.isdigit() or ch.isalpha() for ch in c.raw)


def test_phone_span_covers_the_number_inside_a_sentence() -> None:
    text = "Hello. Text two0two 5five5 0one4three for times. Room 12."
    (c,) = [c for c in extract_contacts(text) if c.kind == "phone"]
    assert c.raw == "two0two 5five5 0one4three"
    assert c.span == (12, 37)


NOT_PHONES = [
    "Rates from $200 per hour, 150 roses for 30 min, $1,500 overnight",
    "Open 10am to 11pm, 24/7 on weekends, booked until 10:30 today",
    "Available from 12/05/2024 and 2024-05-12 through May 12, 2024",
    "Age 21, 21 yrs old, I'm 24",
    "Height 5'6\", 5 ft 7, 170 cm, 125 lbs",
    "Measurements 34-24-36",
    "zip 90210, Houston TX 77002, postal code 10001",
    "Room 1204, suite 300, apt 12B, #1205",
    "Call between 9-11pm on 12/05/2024 room 1204 $200 24/7",
    "2024-05-12 10:30 age 21 5'6\" 34-24-36 $150",
    "I have 2 cats, 3 dogs and 45 fish in 1 house",
    "Someone said one thing and then two more, often at nine",
]


@pytest.mark.parametrize("text", NOT_PHONES)
def test_prices_dates_ages_heights_zips_rooms_are_not_phones(text: str) -> None:
    assert [c for c in extract_contacts(text) if c.kind == "phone"] == []


def test_weak_letters_at_the_edges_are_not_digits() -> None:
    (c,) = extract_phones("202 555 0143 I am here")
    assert c.raw == "202 555 0143"
    (c,) = extract_phones("Oh, 202 555 0143")
    assert c.raw == "202 555 0143"


def test_two_numbers_in_one_ad() -> None:
    text = "Call 202-555-0143 or 713 555 0199."
    assert [c.value for c in extract_phones(text)] == ["+12025550143", "+17135550199"]


def test_unknown_region_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        extract_phones("202 555 0143", region="XX")


@pytest.mark.parametrize(
    ("text", "value", "disguised"),
    [
        ("mail j.doe@example.org today", "j.doe@example.org", False),
        ("write to jane at example dot com", "jane@example.com", True),
        ("jane (at) example (dot) com", "jane@example.com", True),
        ("jane[at]example[.]com", "jane@example.com", True),
        ("jane @ example . com", "jane@example.com", True),
    ],
)
def test_emails(text: str, value: str, disguised: bool) -> None:
    (c,) = [c for c in extract_contacts(text) if c.kind == "email"]
    assert (c.value, c.disguised) == (value, disguised)
    assert text[c.span[0] : c.span[1]] == c.raw


def test_at_in_prose_is_not_an_email() -> None:
    text = "Meet me at the station. Thanks at last."
    assert [c for c in extract_contacts(text) if c.kind == "email"] == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("snap: jane_doe22", "snapchat:jane_doe22"),
        ("Snapchat jane.d", "snapchat:jane.d"),
        ("kik - lucy99", "kik:lucy99"),
        ("telegram @bookings_x", "telegram:bookings_x"),
        ("IG: bobby", "instagram:bobby"),
        ("follow @trixie", "@trixie"),
    ],
)
def test_handles(text: str, value: str) -> None:
    (c,) = [c for c in extract_contacts(text) if c.kind == "handle"]
    assert c.value == value
    assert text[c.span[0] : c.span[1]] == c.raw


def test_platform_word_without_a_name_is_not_a_handle() -> None:
    text = "I use snap and ig a lot. Line up early. Call me on whatsapp."
    assert [c for c in extract_contacts(text) if c.kind == "handle"] == []


def test_urls_through_the_url_signal_type() -> None:
    text = "see https://a.example/x. or hxxp://bad[.]example/p"
    urls = [c for c in extract_contacts(text) if c.kind == "url"]
    assert [(u.value, u.disguised) for u in urls] == [
        ("https://a.example/x", False), ("http://bad.example/p", True)]


def test_email_domain_is_not_also_a_url() -> None:
    kinds = [c.kind for c in extract_contacts("mail j.doe@example.org")]
    assert kinds == ["email"]


@pytest.mark.parametrize(
    ("location", "region"),
    [("Houston, TX", "US"), ("London, UK", "GB"), ("Toronto", "CA"), ("Leeds, England", "GB"),
     ("somewhere", "US"), (None, "US"), ("Dublin", "IE")],
)
def test_region_for_location(location: str | None, region: str) -> None:
    assert region_for_location(location) == region


def test_url_limit_is_reported_not_swallowed() -> None:
    text = " ".join(f"a{i}.example.com" for i in range(10_100))
    with pytest.raises(LimitExceeded):
        extract_contacts(text)


_ALPHABET = st.sampled_from([
    *"0123456789 -.*()+/\n\tOolI@#$:_", "two", "five", "oh", "zero", "١", "５", "①", "\u20e3",
    "\ufe0f", "\u200b", "é", "😀", "at", "dot", "com", "snap:", "age ", "room ",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=60).map("".join))
def test_extractor_never_crashes_and_spans_are_inside(text: str) -> None:
    contacts = extract_contacts(text)
    for c in contacts:
        assert 0 <= c.span[0] < c.span[1] <= len(text)
        assert text[c.span[0] : c.span[1]] == c.raw
        if c.kind == "phone":
            assert c.value.startswith("+") and c.value[1:].isdigit()
    assert extract_contacts(text) == contacts


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_extractor_on_arbitrary_unicode(text: str) -> None:
    for c in extract_contacts(text):
        assert text[c.span[0] : c.span[1]] == c.raw


@pytest.mark.parametrize("text", [
    "Seen 2024-05-01T10:30 at ROOM 12, ZIP 94105, $200K, 10 AM",
    "seen 2024-05-01t10:30 at room 12, zip 94105, $200k, 10 am",
])
def test_non_phone_spans_are_the_same_for_ascii_and_other_text(text: str) -> None:
    # ASCII text is masked on its lowered copy, other text case-insensitively
    ascii_spans = non_phone_spans(text)
    assert len(ascii_spans) >= 5
    assert non_phone_spans(text + " \u00e9") == ascii_spans
