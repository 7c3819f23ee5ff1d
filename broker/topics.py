"""MQTT topic names of the contract (prefix ``cg/v1/``): builders, parsers and filters.

Every topic is built and parsed here so that an id that could widen a subscription or escape a
device's ACL (a wildcard, a slash, an empty segment) never reaches the broker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "cg/v1"
ID_PATTERN = r"[a-z0-9][a-z0-9_-]{0,62}"
_ID_RE = re.compile(ID_PATTERN)


class TopicError(ValueError):
    """A topic or id that the contract does not allow; the message says which part and why."""


class Channel(StrEnum):
    """The last segment of a topic: what kind of message flows on it."""

    EVENTS = "events"
    STATUS = "status"
    TELEMETRY = "telemetry"
    CONFIG = "config"
    GALLERY = "gallery"
    CMD = "cmd"
    ACK = "ack"
    STORED = "stored"

    @property
    def per_device(self) -> bool:
        """Whether the topic names a device (all but the site-wide gallery)."""
        return self is not Channel.GALLERY


def check_id(value: str, what: str = "id") -> str:
    """Return ``value`` if it is a valid site or device id, else raise :class:`TopicError`."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise TopicError(
            f"{what} {value!r} is not allowed: use 1-63 characters of a-z, 0-9, '_' and '-', "
            "starting with a letter or digit"
        )
    return value


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic: its channel, site and (for per-device channels) device."""

    channel: Channel
    site: str
    device: str | None = None

    def __post_init__(self) -> None:
        check_id(self.site, "site")
        if self.channel.per_device:
            if self.device is None:
                raise TopicError(f"the {self.channel} topic needs a device")
            check_id(self.device, "device")
        elif self.device is not None:
            raise TopicError(f"the {self.channel} topic is site-wide and takes no device")

    def __str__(self) -> str:
        if self.device is None:
            return f"{PREFIX}/{self.site}/{self.channel}"
        return f"{PREFIX}/{self.site}/{self.device}/{self.channel}"


def device_topic(channel: Channel | str, site: str, device: str) -> str:
    """The topic string of a per-device channel, e.g. ``cg/v1/{site}/{device}/events``."""
    return str(Topic(Channel(channel), site, device))


def gallery_topic(site: str) -> str:
    """The site-wide gallery topic ``cg/v1/{site}/gallery``."""
    return str(Topic(Channel.GALLERY, site))


def parse_topic(topic: str) -> Topic:
    """Parse a concrete topic name (no wildcards) into a :class:`Topic`, or raise TopicError."""
    if not isinstance(topic, str) or not topic:
        raise TopicError("the topic is empty")
    if not topic.startswith(PREFIX + "/"):
        raise TopicError(f"topic {topic!r} does not start with {PREFIX}/")
    parts = topic[len(PREFIX) + 1 :].split("/")
    for part in parts:
        if part == "":
            raise TopicError(f"topic {topic!r} has an empty segment")
        if part in ("+", "#") or "+" in part or "#" in part:
            raise TopicError(f"topic {topic!r} contains a wildcard; a message topic cannot")
    try:
        channel = Channel(parts[-1])
    except ValueError:
        known = ", ".join(c.value for c in Channel)
        raise TopicError(f"topic {topic!r} ends in {parts[-1]!r}, not one of {known}") from None
    expected = 3 if channel.per_device else 2
    if len(parts) != expected:
        shape = "{site}/{device}/" if channel.per_device else "{site}/"
        raise TopicError(f"topic {topic!r} must look like {PREFIX}/{shape}{channel}")
    return Topic(channel, parts[0], parts[1] if channel.per_device else None)


def subscription(
    channel: Channel | str,
    site: str | None = None,
    device: str | None = None,
    share: str | None = None,
) -> str:
    """A subscription filter for a channel; ``None`` site or device means every one (``+``).

    ``share`` makes it a shared subscription (``$share/{share}/…``) so that several consumers
    (e.g. ingest workers) split the messages instead of each getting all of them.
    """
    channel = Channel(channel)
    segments = [PREFIX, check_id(site, "site") if site is not None else "+"]
    if channel.per_device:
        segments.append(check_id(device, "device") if device is not None else "+")
    elif device is not None:
        raise TopicError(f"the {channel} topic is site-wide and takes no device")
    segments.append(channel.value)
    topic_filter = "/".join(segments)
    return f"$share/{check_id(share, 'share group')}/{topic_filter}" if share else topic_filter
