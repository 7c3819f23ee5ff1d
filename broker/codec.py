"""Encode payloads for publishing and decode received ones against their topic.

Decoding is the single gate every consumer passes a message through: size first (so a huge
payload is never parsed), then strict schema validation, then the check that a gate's message
names the same site and device as the topic it was published on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from broker.payloads import (
    Command,
    CommandAck,
    DeviceMessage,
    Event,
    GalleryNotice,
    GateConfig,
    Message,
    Receipt,
    Status,
    Telemetry,
)
from broker.topics import Channel, Topic, TopicError, parse_topic

MAX_PAYLOAD_BYTES = 64 * 1024

MODELS: dict[Channel, type[Message]] = {
    Channel.EVENTS: Event,
    Channel.STATUS: Status,
    Channel.TELEMETRY: Telemetry,
    Channel.CONFIG: GateConfig,
    Channel.GALLERY: GalleryNotice,
    Channel.CMD: Command,
    Channel.ACK: CommandAck,
    Channel.STORED: Receipt,
}


class PayloadError(ValueError):
    """A message that breaks the contract; ``str()`` names each bad field and why."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """A message that passed every check, with the topic it arrived on."""

    topic: Topic
    message: Message


def encode(message: BaseModel) -> bytes:
    """Serialise a payload to compact UTF-8 JSON, refusing one larger than the contract allows."""
    data = message.model_dump_json().encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload is {len(data)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    return data


def describe_errors(error: ValidationError) -> str:
    """One line per problem: the field's dotted path, what is wrong, and the offending value."""
    lines = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "payload"
        line = f"{where}: {item['msg'].removeprefix('Value error, ')}"
        if item["type"] not in ("missing", "json_invalid") and where != "payload":
            shown = repr(item.get("input"))
            line += f" (got {shown[:80]}{'…' if len(shown) > 80 else ''})"
        lines.append(line)
    return "; ".join(lines)


def validate_payload(channel: Channel, payload: bytes | str) -> Message:
    """Validate a raw payload against the model of ``channel`` without any topic check."""
    raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload is {len(raw)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    try:
        return MODELS[channel].model_validate_json(raw)
    except ValidationError as exc:
        raise PayloadError(describe_errors(exc)) from None


def decode(topic: str, payload: bytes | str) -> Decoded:
    """Check a received message completely: topic, size, schema and topic/payload agreement."""
    try:
        parsed = parse_topic(topic)
    except TopicError as exc:
        raise PayloadError(f"topic: {exc}") from None
    message = validate_payload(parsed.channel, payload)
    if isinstance(message, DeviceMessage):
        if message.site != parsed.site:
            raise PayloadError(f"site: {message.site!r} does not match the topic's {parsed.site!r}")
        if message.device != parsed.device:
            raise PayloadError(
                f"device: {message.device!r} does not match the topic's {parsed.device!r}"
            )
    if isinstance(message, GalleryNotice) and message.site != parsed.site:
        raise PayloadError(f"site: {message.site!r} does not match the topic's {parsed.site!r}")
    return Decoded(parsed, message)


def json_schemas() -> dict[str, Any]:
    """JSON Schema of every channel's payload, keyed by channel name."""
    return {channel.value: model.model_json_schema() for channel, model in MODELS.items()}
