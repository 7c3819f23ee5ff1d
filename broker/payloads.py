"""Payload schemas of the contract, one pydantic model per channel (schema version 1).

Models are strict: unknown fields, wrong JSON types, naive datetimes and out-of-range numbers are
refused, so a gate with a bug or an attacker with a stolen credential cannot slip a half-valid
message into attendance. Each model carries ``schema_version`` so that a consumer recognises a
message from a newer contract instead of misreading it.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, time
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from broker.topics import ID_PATTERN

SCHEMA_VERSION = 1

SiteId = Annotated[str, StringConstraints(pattern=f"^{ID_PATTERN}$")]
DeviceId = Annotated[str, StringConstraints(pattern=f"^{ID_PATTERN}$")]
StudentId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
CardUid = Annotated[str, StringConstraints(pattern=r"^(?:[0-9A-F]{2}){4,10}$")]
PackName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
Version = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Count = Annotated[int, Field(ge=0, le=2**53)]
Milliseconds = Annotated[float, Field(ge=0.0, le=86_400_000.0)]
ShortText = Annotated[str, StringConstraints(max_length=1024)]
ArgKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
ArgValue = Annotated[str, StringConstraints(max_length=256)] | int | float | bool
StageName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]

MAX_RECEIPT_IDS = 256
"""Event ids in one receipt at most: about 10 KB of JSON, well inside the payload limit; the
server splits a larger batch into several receipts."""


EventKind = Literal["face", "card", "face+card"]
"""What identified the student: the face, the card, or both together."""

FaceCheck = Literal["match", "mismatch", "missing"]
"""Under a gate's ``require_face`` policy, how the face seen with a card tap compared with the
card's owner: the same student, someone else, or no recognised face within the window."""

Direction = Literal["in", "out"]
"""Whether the student passed the gate going in or going out."""


class _Strict(BaseModel):
    """Common settings: strict types, no unknown fields, immutable, no NaN or infinity."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        allow_inf_nan=False,
        json_schema_serialization_defaults_required=True,
    )


class Message(_Strict):
    """Base of every payload: the schema version this message was written against."""

    schema_version: Literal[1] = Field(
        default=SCHEMA_VERSION, description="Version of the payload schema; 1 for cg/v1."
    )

    @field_validator("schema_version", mode="before")
    @classmethod
    def _integer_version(cls, value: object) -> object:
        # Literal[1] alone would take JSON true and 1.0, since both equal 1 in Python.
        if type(value) is not int:
            raise ValueError(f"must be the integer {SCHEMA_VERSION}")
        return value


class DeviceMessage(Message):
    """A message a gate sends about itself; site and device must match the topic's."""

    site: SiteId
    device: DeviceId


class Event(DeviceMessage):
    """A student (or an unknown face, or a card) seen passing a gate."""

    event_id: UUID = Field(description="Unique per event; the server ignores a repeat.")
    kind: EventKind
    ts: AwareDatetime = Field(description="Capture time of the deciding frame, with its offset.")
    direction: Direction
    student_id: StudentId | None = Field(default=None, description="Null for an unknown face.")
    score: Unit | None = Field(default=None, description="Face match confidence, 0..1.")
    card_uid: CardUid | None = Field(default=None, description="Card UID in upper-case hex.")
    face_check: FaceCheck | None = Field(
        default=None,
        description="Set on card taps at a gate that requires the owner's face; null otherwise.",
    )
    track_id: Count | None = None
    quality: Unit | None = Field(default=None, description="Quality of the best face, 0..1.")
    model_pack: PackName | None = None
    gallery_version: Count | None = None
    latency_ms: Milliseconds = Field(description="From capture of the deciding frame to outbox.")

    @model_validator(mode="after")
    def _fields_match_kind(self) -> Event:
        """A face needs its score, track and pack; a card needs its UID; each only its own."""
        has_face = self.kind in ("face", "face+card")
        has_card = self.kind in ("card", "face+card")
        if has_face:
            missing = [
                name for name in ("score", "track_id", "model_pack") if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"a {self.kind} event needs {', '.join(missing)}")
        elif self.score is not None or self.track_id is not None:
            raise ValueError("a card event carries no score or track_id")
        if has_card and self.card_uid is None:
            raise ValueError(f"a {self.kind} event needs card_uid")
        if not has_card and self.card_uid is not None:
            raise ValueError("a face event carries no card_uid")
        if self.face_check is not None and not has_card:
            raise ValueError("a face event carries no face_check")
        if self.kind == "face+card" and self.face_check not in (None, "match"):
            raise ValueError("a face+card event is a match; a mismatch is a card event")
        return self


class Status(DeviceMessage):
    """Retained presence of a gate; the broker publishes the ``offline`` one as its last will."""

    state: Literal["online", "offline"]
    ts: AwareDatetime
    version: Version = Field(description="campusgate version running on the gate.")
    model_pack: PackName | None = None
    gallery_version: Count | None = None


class StageTiming(_Strict):
    """How long one stage of the gate loop took over the last telemetry period."""

    p50_ms: Milliseconds
    p95_ms: Milliseconds


class Telemetry(DeviceMessage):
    """Periodic health of a gate: throughput, stage timings, backlog, temperature, memory."""

    ts: AwareDatetime
    fps_in: Annotated[float, Field(ge=0.0, le=1000.0)]
    fps_processed: Annotated[float, Field(ge=0.0, le=1000.0)]
    frames_dropped: Count
    stages: dict[StageName, StageTiming] = Field(default_factory=dict, max_length=16)
    outbox_depth: Count = Field(
        description="Events in the gate's outbox: not sent yet, or without the server's receipt."
    )
    cpu_temp_c: Annotated[float, Field(ge=-40.0, le=150.0)] | None = None
    mem_rss_mb: Annotated[float, Field(ge=0.0)]
    uptime_s: Annotated[float, Field(ge=0.0)]


class CrossingLine(_Strict):
    """A line across the frame (coordinates 0..1); crossing it towards ``in_side`` means ``in``."""

    x1: Unit
    y1: Unit
    x2: Unit
    y2: Unit
    in_side: Literal["left", "right"]


class ScheduleWindow(_Strict):
    """Times of day, on ISO weekdays (1 = Monday), when the gate records passes."""

    weekdays: list[Annotated[int, Field(ge=1, le=7)]] = Field(min_length=1, max_length=7)
    start: time
    end: time

    @model_validator(mode="after")
    def _start_before_end(self) -> ScheduleWindow:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class GateConfig(Message):
    """Desired configuration of one gate, retained by the broker and applied on receipt."""

    revision: Count
    ts: AwareDatetime
    direction: Literal["in", "out", "line"] = Field(
        description="Fixed direction, or 'line' to decide from the track crossing crossing_line."
    )
    crossing_line: CrossingLine | None = None
    match_threshold: Unit
    min_face_px: Annotated[int, Field(ge=16, le=1024)]
    detect_fps: Annotated[float, Field(gt=0.0, le=60.0)]
    cooldown_s: Annotated[int, Field(ge=0, le=86_400)]
    require_face: bool = Field(description="A card tap counts only with the card owner's face.")
    schedule: list[ScheduleWindow] = Field(default_factory=list, max_length=32)

    @model_validator(mode="after")
    def _line_when_needed(self) -> GateConfig:
        if (self.direction == "line") != (self.crossing_line is not None):
            raise ValueError("crossing_line is required with direction 'line' and only then")
        return self


class GalleryNotice(Message):
    """Announces a gallery version; gates fetch the embeddings over HTTPS and check them."""

    site: SiteId
    version: Count
    ts: AwareDatetime
    model_pack: PackName
    entries: Count
    url: AnyHttpUrl = Field(description="Where to fetch the embeddings; https unless loopback.")
    sha256: Sha256Hex
    size_bytes: Count
    key_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
    signature: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/]{86}==$")] = Field(
        description="Base64 Ed25519 signature of the manifest, by the server's gallery key."
    )

    @field_validator("url")
    @classmethod
    def _https_unless_loopback(cls, url: AnyHttpUrl) -> AnyHttpUrl:
        if url.scheme == "https":
            return url
        host = (url.host or "").strip("[]")
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError("must use https (plain http is allowed only on loopback)")
        return url


class Command(Message):
    """An instruction from the server to one gate; the gate answers on ``ack``."""

    cmd_id: UUID
    ts: AwareDatetime
    name: Literal["reload", "snapshot", "test-beep"]
    args: dict[ArgKey, ArgValue] = Field(default_factory=dict, max_length=16)
    expires_at: AwareDatetime | None = Field(
        default=None, description="A gate that receives the command later ignores it."
    )


class CommandAck(DeviceMessage):
    """A gate's answer to a command."""

    cmd_id: UUID
    ts: AwareDatetime
    ok: bool
    detail: ShortText = ""
    result: dict[ArgKey, ArgValue] = Field(default_factory=dict, max_length=16)


class Receipt(Message):
    """The server's word that these events of the gate named by the topic are in its database.

    A gate forgets an event only on this, never on the broker's PUBACK: a PUBACK says only that
    the broker took the event, and a broker can still drop it (Mosquitto forgets the ingest
    workers' shared subscriptions across a restart). Sent after the transaction committed, for
    events stored by it and for repeats found stored before, so a gate that sent again hears too.
    """

    ts: AwareDatetime = Field(description="When the transaction holding the events committed.")
    event_ids: list[UUID] = Field(min_length=1, max_length=MAX_RECEIPT_IDS)


def utc_now() -> datetime:
    """The current time as an aware UTC datetime, the form every payload timestamp takes."""
    return datetime.now(UTC)
