"""Every kind of message in both languages, on the school's clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from server.notify.messages import (
    FIELD_NAMES,
    DigestEvent,
    MessageContext,
    opt_out_line,
    render,
    render_digest,
)
from server.notify.sms_text import count_segments, is_gsm7_basic
from server.notify.templates import MessageKind

AT = datetime(2026, 12, 2, 0, 12, tzinfo=UTC)  # 07:12 in Hà Nội
CONTEXT = MessageContext(
    student_name="Nguyễn Văn An",
    class_name="6A1",
    at=AT,
    gate="Cổng chính",
    school_name="THCS Lê Lợi",
    reason="Ốm, có giấy của bác sĩ.",
)

EXPECTED_VI = {
    MessageKind.ARRIVED: "Học sinh Nguyễn Văn An, lớp 6A1, đã đến trường lúc 07:12 ngày "
    "02/12/2026 tại Cổng chính.",
    MessageKind.LEFT: "Học sinh Nguyễn Văn An, lớp 6A1, đã rời trường lúc 07:12 ngày 02/12/2026 "
    "tại Cổng chính.",
    MessageKind.LATE: "Học sinh Nguyễn Văn An, lớp 6A1, đến trường muộn lúc 07:12 ngày "
    "02/12/2026 tại Cổng chính.",
    MessageKind.ABSENT: "Học sinh Nguyễn Văn An, lớp 6A1, chưa có mặt ở trường ngày 02/12/2026 "
    "(ghi nhận lúc 07:12). Nếu con nghỉ có lý do, xin phụ huynh báo cho giáo viên chủ nhiệm.",
    MessageKind.EXCUSED: "Nhà trường đã xác nhận học sinh Nguyễn Văn An, lớp 6A1, nghỉ có phép "
    "ngày 02/12/2026. Lý do: Ốm, có giấy của bác sĩ.",
    MessageKind.CARD_WITHOUT_FACE: "Thẻ của học sinh Nguyễn Văn An, lớp 6A1, được quẹt lúc 07:12 "
    "ngày 02/12/2026 tại Cổng chính nhưng camera không nhận ra khuôn mặt của con. Nếu con không "
    "dùng thẻ lúc đó, xin liên hệ nhà trường ngay.",
}


@pytest.mark.parametrize("kind", list(MessageKind))
def test_vietnamese_text_of_every_kind(kind: MessageKind) -> None:
    message = render(kind, "vi", CONTEXT)
    assert message.text == EXPECTED_VI[kind]
    assert "Nguyễn Văn An" in message.subject


@pytest.mark.parametrize("kind", list(MessageKind))
@pytest.mark.parametrize("locale", ["vi", "en"])
def test_every_kind_in_both_languages_keeps_the_name_and_has_an_sms_form(
    kind: MessageKind, locale: str
) -> None:
    message = render(kind, locale, CONTEXT)  # type: ignore[arg-type]
    assert "Nguyễn Văn An" in message.text and "6A1" in message.text
    assert "02/12/2026" in message.text
    short = message.short_text_unaccented
    assert short.startswith("THCS Le Loi: ") and "Nguyen Van An" in short
    assert is_gsm7_basic(short) and count_segments(short).segments == 1
    assert set(message.fields) == FIELD_NAMES and message.fields["kind"] == kind.value


def test_english_wording() -> None:
    assert render(MessageKind.LEFT, "en", CONTEXT).text == (
        "Nguyễn Văn An (6A1) left school at 07:12 on 02/12/2026 via Cổng chính."
    )
    assert render(MessageKind.EXCUSED, "en", CONTEXT).text.endswith(
        "on 02/12/2026. Reason: Ốm, có giấy của bác sĩ."
    )


@pytest.mark.parametrize(
    ("at", "zone", "shown"),
    [
        (datetime(2026, 12, 1, 17, 30, tzinfo=UTC), "Asia/Ho_Chi_Minh", "00:30 ngày 02/12/2026"),
        (datetime(2026, 12, 2, 7, 12, tzinfo=timezone(timedelta(hours=7))), "Asia/Ho_Chi_Minh",
         "07:12 ngày 02/12/2026"),
        (AT, "Asia/Tokyo", "09:12 ngày 02/12/2026"),
        (AT, "UTC", "00:12 ngày 02/12/2026"),
    ],
)  # fmt: skip
def test_time_is_shown_on_the_schools_clock(at: datetime, zone: str, shown: str) -> None:
    context = CONTEXT.model_copy(update={"at": at, "zone": zone})
    assert f"lúc {shown}" in render(MessageKind.ARRIVED, "vi", context).text


def test_default_zone_is_ho_chi_minh_city() -> None:
    context = MessageContext(student_name="Lê Thị Hoa", class_name="7B", at=AT)
    message = render(MessageKind.ARRIVED, "vi", context)
    assert message.text == "Học sinh Lê Thị Hoa, lớp 7B, đã đến trường lúc 07:12 ngày 02/12/2026."
    assert message.short_text_unaccented == ("Le Thi Hoa (7B) da den truong luc 07:12 02/12/2026.")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("at", datetime(2026, 12, 2, 7, 12)),
        ("zone", "Asia/Saigon_Nowhere"),
        ("student_name", " "),
        ("student_name", "An\r\nBcc: someone@example.com"),
        ("gate", "Cổng\x00 1"),
    ],
)
def test_bad_context_is_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        MessageContext.model_validate({**CONTEXT.model_dump(), field: value})


def test_digest_lists_the_day_in_time_order() -> None:
    events = [
        DigestEvent(MessageKind.LEFT, datetime(2026, 12, 2, 9, 35, tzinfo=UTC), "Cổng 2"),
        DigestEvent(MessageKind.LATE, datetime(2026, 12, 2, 0, 12, tzinfo=UTC), "Cổng 1"),
    ]
    message = render_digest("vi", CONTEXT, date(2026, 12, 2), events)
    assert message.subject == "Tóm tắt ngày 02/12/2026: Nguyễn Văn An"
    assert message.text == (
        "Tóm tắt điểm danh ngày 02/12/2026 của học sinh Nguyễn Văn An, lớp 6A1:\n"
        "- 07:12 đến muộn tại Cổng 1\n"
        "- 16:35 rời trường tại Cổng 2"
    )
    assert message.short_text_unaccented == (
        "THCS Le Loi: Nguyen Van An (6A1) ngay 02/12/2026: 07:12 den muon; 16:35 roi truong."
    )
    english = render_digest("en", CONTEXT, date(2026, 12, 2), events)
    assert english.text.splitlines()[1] == "- 07:12 arrived late via Cổng 1"


def test_an_empty_digest_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one event"):
        render_digest("vi", CONTEXT, date(2026, 12, 2), [])


def test_opt_out_line_in_both_languages() -> None:
    assert opt_out_line("vi", "https://x/o") == "Ngừng nhận thông báo qua kênh này: https://x/o"
    assert opt_out_line("en", "https://x/o") == "Stop notifications on this channel: https://x/o"
