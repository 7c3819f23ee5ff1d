"""An admin in the browser: face enrollment under a consent (the faces found, each refusal and
why, nothing stored without a consent), a calendar day added and deleted on a record page, the
delivery log showing a message that exists with its status, a gate shown online once it said
so over MQTT; signing in with the keyboard alone, and the dashboard at 360 px wide."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func
from sqlmodel import Session, select

from broker.codec import encode
from broker.managed import connect
from broker.payloads import Status
from broker.topics import Channel, device_topic
from models.packs import Pack
from server.db import writer
from server.models import BiometricConsent, CalendarDay, Device, DeviceStatus, FaceEnrollment
from server.notify.models import Notification, NotificationStatus
from tests.web.conftest import sign_in
from tests.web.harness import PASSWORD, SITE, LiveSchool

OBAMA = "face_recognition/by_identity/obama/obama.jpg"
OBAMA_2 = "face_recognition/by_identity/obama/obama2.jpg"
TWO_FACES = "face_recognition/_multi_face/kit_with_rose.jpg"
NO_FACE = "face-api-js/_no_face/white.png"
FINAL = {NotificationStatus.ACCEPTED, NotificationStatus.FAILED, NotificationStatus.SKIPPED}
ENGINE_LOAD_MS = 120_000  # the first enrollment loads the face models into the server


@pytest.fixture(scope="module")
def school(
    tmp_path_factory: pytest.TempPathFactory, browser: Browser, default_pack: Pack
) -> Iterator[LiveSchool]:
    """The harness's school, its server enrolling with a default pack built for this session
    (never one left in the user's models directory)."""
    live = LiveSchool.create(tmp_path_factory.mktemp("live"))
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("CAMPUSGATE_SERVER__FACES__MODELS_DIR", str(default_pack.root.parent))
            live.start()
        yield live
    finally:
        live.stop()


@pytest.fixture
def page(browser: Browser, school: LiveSchool) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    sign_in(page, school, LiveSchool.ADMIN)
    yield page
    context.close()


def count(school: LiveSchool, table: type, *where) -> int:
    with Session(school.engine) as db:
        return db.exec(select(func.count()).select_from(table).where(*where)).one()


def enroll(page: Page, faces: Path, name: str, *photos: str) -> None:
    """Fill the enrollment form as the admin would and send it."""
    page.get_by_label("Người đồng ý", exact=True).select_option("guardian")
    page.get_by_label("Họ tên người đồng ý").fill(name)
    page.get_by_label("Ảnh khuôn mặt").set_input_files([faces / photo for photo in photos])
    page.get_by_role("button", name="Đăng ký").click()


def test_face_enrollment_shows_each_refusal_and_needs_a_consent(
    page: Page, school: LiveSchool, faces_dir: Path
) -> None:
    student = school.world.students[2]
    stored = (FaceEnrollment.student_id == student.id,)
    consents = (BiometricConsent.student_id == student.id,)
    page.goto(f"{school.url}/admin/students/{student.id}/faces")
    expect(page.locator("#enroll-status")).to_have_text("Chưa có sự đồng ý")
    error = page.locator("#enroll-error")
    results = page.locator("#enroll-result li")

    enroll(page, faces_dir, "", OBAMA, OBAMA_2)

    expect(error).to_contain_text(
        "Không đăng ký được khuôn mặt; chưa lưu gì", timeout=ENGINE_LOAD_MS
    )
    expect(error).to_contain_text("Trường given_by_name không hợp lệ")
    assert (count(school, FaceEnrollment, *stored), count(school, BiometricConsent, *consents)) == (
        0,
        0,
    )

    enroll(page, faces_dir, "Trần Văn Bố", OBAMA, TWO_FACES, NO_FACE)

    expect(results).to_have_count(3)
    expect(results.nth(1)).to_contain_text("Bị từ chối")
    expect(results.nth(1)).to_contain_text(
        re.compile(r"Ảnh có \d+ khuôn mặt; ảnh đăng ký chỉ được có một người")
    )
    expect(results.nth(2)).to_contain_text("Không tìm thấy khuôn mặt nào trong ảnh")
    expect(results.nth(0)).not_to_contain_text("Bị từ chối")
    expect(error).to_have_text(
        "Không đăng ký được khuôn mặt; chưa lưu gì / Face enrollment refused; nothing was stored"
    )
    assert count(school, FaceEnrollment, *stored) == 0
    assert count(school, BiometricConsent, *consents) == 0

    enroll(page, faces_dir, "Trần Văn Bố", OBAMA, OBAMA_2)

    expect(page.locator("#toast")).to_have_text("Đã lưu mẫu khuôn mặt: 2")
    expect(results).to_have_count(2)
    for result in results.all():
        expect(result).to_have_text("Đã lưu mẫu khuôn mặt")
    expect(error).to_be_empty()
    expect(page.locator("#enroll-status")).to_have_text(
        "Sự đồng ý: Trần Văn Bố. dlib-r29-mtcnn: 2 mẫu"
    )
    assert count(school, FaceEnrollment, *stored) == 2
    with Session(school.engine) as db:
        [consent] = db.exec(select(BiometricConsent).where(*consents)).all()
    assert (consent.given_by_name, consent.withdrawn_at) == ("Trần Văn Bố", None)


def test_a_calendar_day_is_added_and_deleted_on_the_schools_page(
    page: Page, school: LiveSchool
) -> None:
    day, name = date(2031, 4, 1), "Giỗ Tổ Hùng Vương"
    on_day = (CalendarDay.school_id == school.world.school.id, CalendarDay.date == day)
    page.goto(f"{school.url}/admin/schools")
    section = page.get_by_role("region", name="Ngày nghỉ và ngày học bù")
    form = section.get_by_role("form")
    form.get_by_label("Mã trường").fill(str(school.world.school.id))
    form.get_by_label("Ngày").fill(day.isoformat())
    form.get_by_label("Loại").select_option("holiday")
    form.get_by_label("Tên").fill(name)
    form.get_by_role("button", name="Thêm").click()

    row = section.locator("tbody tr").filter(has_text=name)
    expect(row).to_have_count(1)
    expect(row).to_contain_text(day.isoformat())
    with Session(school.engine) as db:
        [stored] = db.exec(select(CalendarDay).where(*on_day)).all()
    assert (stored.kind, stored.name) == ("holiday", name)

    row.get_by_role("button", name=f"Xóa {stored.id}").click()

    expect(row).to_have_count(0)
    assert count(school, CalendarDay, *on_day) == 0


def test_a_long_list_comes_in_pages_of_200(page: Page, school: LiveSchool) -> None:
    """A school has more students than one answer holds: the rest are one click away."""
    days = [
        CalendarDay(
            school_id=school.world.school.id,
            date=date(2040, 1, 1) + timedelta(days=n),
            kind="holiday",
            name=f"Ngày thử {n}",
        )
        for n in range(205)
    ]
    with Session(writer(school.engine)) as db:
        already = db.exec(select(func.count()).select_from(CalendarDay)).one()
        db.add_all(days)
        db.commit()
    try:
        page.goto(f"{school.url}/admin/schools")
        section = page.get_by_role("region", name="Ngày nghỉ và ngày học bù")
        rows = section.locator("tbody tr")
        expect(rows).to_have_count(200)
        more = section.get_by_role("button", name="Xem thêm")
        more.click()
        expect(rows).to_have_count(already + 205)
        expect(more).to_be_hidden()
    finally:
        with Session(writer(school.engine)) as db:
            for day in db.exec(select(CalendarDay).where(CalendarDay.date >= date(2040, 1, 1))):
                db.delete(day)
            db.commit()


def test_the_delivery_log_lists_a_message_with_its_status(page: Page, school: LiveSchool) -> None:
    """The parent's child arrives; the parent wants Web Push but this school has no browser of
    theirs subscribed, so the message ends as a failure saying so."""
    child = school.parent_child
    assert child is not None
    school.gate_event(child)

    def delivered() -> Notification | None:
        with Session(school.engine) as db:
            return db.exec(
                select(Notification).where(
                    Notification.student_id == child.id, Notification.status.in_(FINAL)
                )
            ).first()

    school.wait_until(lambda: delivered() is not None, "the arrival's message in the outbox")
    message = delivered()
    assert message is not None
    page.goto(f"{school.url}/admin/deliveries")

    row = page.locator(f"#delivery-{message.id}")
    expect(row).to_contain_text("Nguyễn Văn An")
    expect(row).to_contain_text("Trần Thị Hoa")
    expect(row).to_contain_text("Thông báo trình duyệt")
    expect(row).to_contain_text("Đến trường")
    status = row.locator("[data-status]")
    expect(status).to_have_attribute("data-status", message.status.value)
    expect(status).to_have_text(
        {"accepted": "Đã gửi", "failed": "Gửi không được", "skipped": "Bỏ qua"}[message.status]
    )
    expect(row).to_contain_text(message.last_error or message.reason)


def publish_status(school: LiveSchool, gate: str, **fields) -> None:
    """``gate`` says it is online, retained, as the edge agent does on connecting."""
    client = school.gates.get(gate)
    if client is None:
        client = school.broker.client(f"{SITE}.{gate}")
        assert connect(school.broker, client) == 0, f"{gate} could not connect"
        school.gates[gate] = client
    status = Status(site=SITE, device=gate, state="online", ts=datetime.now(UTC), **fields)
    topic = device_topic(Channel.STATUS, SITE, gate)
    client.publish(topic, encode(status), qos=1, retain=True).wait_for_publish(5)


def test_the_gates_page_shows_a_gate_online_once_it_says_so(page: Page, school: LiveSchool) -> None:
    page.goto(f"{school.url}/admin/devices")
    gate = page.locator(f'[data-device="{SITE}.gate-2"]')
    expect(gate).to_contain_text("Chưa rõ")

    publish_status(school, "gate-2", version="1.4.2", model_pack="dlib-r29-mtcnn")

    def online() -> bool:
        with Session(school.engine) as db:
            device = db.exec(select(Device).where(Device.device_id == "gate-2")).one()
            return device.status == DeviceStatus.ONLINE

    school.wait_until(online, "gate-2 online in the database")
    page.reload()
    expect(gate).to_contain_text("Trực tuyến")
    expect(gate).to_contain_text("1.4.2")
    expect(gate).to_contain_text("dlib-r29-mtcnn")
    expect(gate).not_to_contain_text("Chưa rõ")


def test_the_sign_in_form_works_with_the_keyboard_alone(
    browser: Browser, school: LiveSchool
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{school.url}/login")
    expect(page.get_by_label("Tên đăng nhập")).to_be_focused()
    page.keyboard.type(LiveSchool.ADMIN)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Mật khẩu")).to_be_focused()
    page.keyboard.type("sai-mat-khau")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("Đăng nhập không thành công")
    expect(page.get_by_label("Mật khẩu")).to_be_focused()

    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Đăng nhập")).to_be_focused()
    page.keyboard.press("Enter")

    expect(page).to_have_url(f"{school.url}/admin")
    context.close()


def test_the_dashboard_fits_a_phone_screen(browser: Browser, school: LiveSchool) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    sign_in(page, school, LiveSchool.ADMIN)
    expect(page.locator("#rates")).to_be_attached()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 360
    context.close()
