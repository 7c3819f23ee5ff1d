"""The wording of every parent notification, Vietnamese first, as data.

Each kind has a subject (push title, e-mail subject), a full text and a short form for SMS. The
short form is written with diacritics like the rest and made unaccented by the renderer, so a
translator edits one sentence, not two. Placeholders (``str.format``):

``{name}`` child's name · ``{class_name}`` class · ``{time}`` "07:12 ngày 02/12/2026" ·
``{clock}`` "07:12" · ``{date}`` "02/12/2026" · ``{gate}`` " tại Cổng 1" or "" ·
``{reason}`` ". Lý do: …" or "" · ``{school}`` "Trường X: " or "".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Locale = Literal["vi", "en"]


class MessageKind(StrEnum):
    """What happened, from a parent's point of view."""

    ARRIVED = "arrived"
    LEFT = "left"
    LATE = "late"
    ABSENT = "absent"
    EXCUSED = "excused"
    """An absence the school has confirmed as excused (nghỉ có phép)."""
    CARD_WITHOUT_FACE = "card_without_face"
    """The child's card was tapped but the camera did not see the child's face."""


@dataclass(frozen=True, slots=True)
class Template:
    subject: str
    text: str
    short: str


@dataclass(frozen=True, slots=True)
class Phrases:
    """The small pieces the templates are assembled from, per language."""

    time: str
    gate: str
    reason: str
    school: str
    opt_out: str
    digest_subject: str
    digest_heading: str
    digest_short: str
    digest_events: dict[MessageKind, str]


TEMPLATES: dict[Locale, dict[MessageKind, Template]] = {
    "vi": {
        MessageKind.ARRIVED: Template(
            subject="{name} đã đến trường",
            text="Học sinh {name}, lớp {class_name}, đã đến trường lúc {time}{gate}.",
            short="{school}{name} ({class_name}) đã đến trường lúc {clock} {date}{gate}.",
        ),
        MessageKind.LEFT: Template(
            subject="{name} đã ra về",
            text="Học sinh {name}, lớp {class_name}, đã rời trường lúc {time}{gate}.",
            short="{school}{name} ({class_name}) đã rời trường lúc {clock} {date}{gate}.",
        ),
        MessageKind.LATE: Template(
            subject="{name} đến trường muộn",
            text="Học sinh {name}, lớp {class_name}, đến trường muộn lúc {time}{gate}.",
            short="{school}{name} ({class_name}) đến trường muộn lúc {clock} {date}{gate}.",
        ),
        MessageKind.ABSENT: Template(
            subject="{name} vắng mặt ngày {date}",
            text=(
                "Học sinh {name}, lớp {class_name}, chưa có mặt ở trường ngày {date} (ghi nhận "
                "lúc {clock}). Nếu con nghỉ có lý do, xin phụ huynh báo cho giáo viên chủ nhiệm."
            ),
            short=(
                "{school}{name} ({class_name}) chưa có mặt ở trường ngày {date}, lúc {clock}. "
                "Nếu con nghỉ, xin báo giáo viên chủ nhiệm."
            ),
        ),
        MessageKind.EXCUSED: Template(
            subject="Đã xác nhận {name} nghỉ có phép",
            text="Nhà trường đã xác nhận học sinh {name}, lớp {class_name}, nghỉ có phép "
            "ngày {date}{reason}.",
            short="{school}Đã xác nhận {name} ({class_name}) nghỉ có phép ngày {date}.",
        ),
        MessageKind.CARD_WITHOUT_FACE: Template(
            subject="Thẻ của {name} được quẹt nhưng không nhận ra khuôn mặt",
            text=(
                "Thẻ của học sinh {name}, lớp {class_name}, được quẹt lúc {time}{gate} nhưng "
                "camera không nhận ra khuôn mặt của con. Nếu con không dùng thẻ lúc đó, xin liên "
                "hệ nhà trường ngay."
            ),
            short=(
                "{school}Thẻ của {name} ({class_name}) được quẹt lúc {clock} {date}{gate} nhưng "
                "không nhận ra khuôn mặt. Nếu không phải con, xin báo nhà trường."
            ),
        ),
    },
    "en": {
        MessageKind.ARRIVED: Template(
            subject="{name} arrived at school",
            text="{name} ({class_name}) arrived at school at {time}{gate}.",
            short="{school}{name} ({class_name}) arrived at school at {clock} {date}{gate}.",
        ),
        MessageKind.LEFT: Template(
            subject="{name} left school",
            text="{name} ({class_name}) left school at {time}{gate}.",
            short="{school}{name} ({class_name}) left school at {clock} {date}{gate}.",
        ),
        MessageKind.LATE: Template(
            subject="{name} arrived late",
            text="{name} ({class_name}) arrived late at school at {time}{gate}.",
            short="{school}{name} ({class_name}) arrived late at {clock} {date}{gate}.",
        ),
        MessageKind.ABSENT: Template(
            subject="{name} is absent on {date}",
            text=(
                "{name} ({class_name}) has not arrived at school on {date} (recorded at "
                "{clock}). If your child is absent for a reason, please tell the homeroom teacher."
            ),
            short=(
                "{school}{name} ({class_name}) has not arrived at school on {date}, {clock}. "
                "If absent, please tell the homeroom teacher."
            ),
        ),
        MessageKind.EXCUSED: Template(
            subject="Excused absence confirmed for {name}",
            text="The school has confirmed an excused absence for {name} ({class_name}) "
            "on {date}{reason}.",
            short="{school}Excused absence confirmed for {name} ({class_name}) on {date}.",
        ),
        MessageKind.CARD_WITHOUT_FACE: Template(
            subject="{name}'s card was used without a matching face",
            text=(
                "{name}'s card ({class_name}) was tapped at {time}{gate}, but the camera did not "
                "recognise your child's face. If your child did not use the card then, please "
                "contact the school now."
            ),
            short=(
                "{school}{name}'s card ({class_name}) was tapped at {clock} {date}{gate} without "
                "a matching face. If it was not your child, tell the school."
            ),
        ),
    },
}

PHRASES: dict[Locale, Phrases] = {
    "vi": Phrases(
        time="{clock} ngày {date}",
        gate=" tại {gate}",
        reason=". Lý do: {reason}",
        school="{school}: ",
        opt_out="Ngừng nhận thông báo qua kênh này: {url}",
        digest_subject="Tóm tắt ngày {date}: {name}",
        digest_heading="Tóm tắt điểm danh ngày {date} của học sinh {name}, lớp {class_name}:",
        digest_short="{school}{name} ({class_name}) ngày {date}: {events}.",
        digest_events={
            MessageKind.ARRIVED: "đến trường",
            MessageKind.LEFT: "rời trường",
            MessageKind.LATE: "đến muộn",
            MessageKind.ABSENT: "vắng mặt",
            MessageKind.EXCUSED: "nghỉ có phép (đã xác nhận)",
            MessageKind.CARD_WITHOUT_FACE: "thẻ được quẹt nhưng không nhận ra khuôn mặt",
        },
    ),
    "en": Phrases(
        time="{clock} on {date}",
        gate=" via {gate}",
        reason=". Reason: {reason}",
        school="{school}: ",
        opt_out="Stop notifications on this channel: {url}",
        digest_subject="Summary for {date}: {name}",
        digest_heading="Attendance summary for {name} ({class_name}) on {date}:",
        digest_short="{school}{name} ({class_name}) on {date}: {events}.",
        digest_events={
            MessageKind.ARRIVED: "arrived",
            MessageKind.LEFT: "left",
            MessageKind.LATE: "arrived late",
            MessageKind.ABSENT: "absent",
            MessageKind.EXCUSED: "excused absence confirmed",
            MessageKind.CARD_WITHOUT_FACE: "card tapped without a matching face",
        },
    ),
}
