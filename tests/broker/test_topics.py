"""Topic builders and parsers accept exactly the contract's topics."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.topics import (
    ID_PATTERN,
    Channel,
    Topic,
    TopicError,
    device_topic,
    gallery_topic,
    parse_topic,
    subscription,
)

ids = st.from_regex(f"^{ID_PATTERN}$", fullmatch=True).filter(lambda s: not s.endswith("\n"))
per_device = st.sampled_from([c for c in Channel if c.per_device])


@given(site=ids, device=ids, channel=per_device)
def test_device_topics_round_trip(site: str, device: str, channel: Channel) -> None:
    topic = device_topic(channel, site, device)
    assert topic == f"cg/v1/{site}/{device}/{channel}"
    assert parse_topic(topic) == Topic(channel, site, device)


@given(site=ids)
def test_gallery_topic_round_trips(site: str) -> None:
    assert parse_topic(gallery_topic(site)) == Topic(Channel.GALLERY, site)


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("", "empty"),
        ("cg/v2/s/d/events", "does not start with cg/v1/"),
        ("xx/v1/s/d/events", "does not start with cg/v1/"),
        ("cg/v1//d/events", "empty segment"),
        ("cg/v1/s//events", "empty segment"),
        ("cg/v1/s/d/events/", "empty segment"),
        ("cg/v1/+/d/events", "wildcard"),
        ("cg/v1/s/#", "wildcard"),
        ("cg/v1/s/d+x/events", "wildcard"),
        ("cg/v1/s/d/photos", "not one of"),
        ("cg/v1/s/events", "must look like cg/v1/{site}/{device}/events"),
        ("cg/v1/s/d/gallery", "must look like cg/v1/{site}/gallery"),
        ("cg/v1/School/d/events", "site 'School' is not allowed"),
        ("cg/v1/s/-gate/events", "device '-gate' is not allowed"),
        ("cg/v1/s/g.1/events", "device 'g.1' is not allowed"),
        ("cg/v1/s/" + "d" * 64 + "/events", "is not allowed"),
    ],
)
def test_bad_topics_are_refused_with_the_reason(topic: str, reason: str) -> None:
    with pytest.raises(TopicError, match=re.escape(reason)):
        parse_topic(topic)


@given(bad=st.text(min_size=1, max_size=70).filter(lambda s: s != s.lower() or "/" in s))
def test_builders_refuse_ids_outside_the_alphabet(bad: str) -> None:
    with pytest.raises(TopicError):
        device_topic(Channel.EVENTS, bad, "gate-1")


def test_subscriptions_use_wildcards_and_shared_groups() -> None:
    assert subscription(Channel.EVENTS) == "cg/v1/+/+/events"
    assert subscription("status", site="school-a") == "cg/v1/school-a/+/status"
    assert subscription(Channel.GALLERY, site="s") == "cg/v1/s/gallery"
    assert subscription(Channel.EVENTS, share="ingest") == "$share/ingest/cg/v1/+/+/events"
    with pytest.raises(TopicError):
        subscription(Channel.GALLERY, site="s", device="d")
    with pytest.raises(TopicError):
        subscription(Channel.EVENTS, site="a/b")
