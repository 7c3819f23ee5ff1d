"""The roster import on its own (both databases): the preview names each bad row's problems and
reads only; saving is all or nothing, links siblings to one guardian, and is audited; national ID
numbers are checked like student codes."""

from __future__ import annotations

import io
import re

import pytest
from openpyxl import Workbook
from sqlalchemy import func
from sqlmodel import Session, select

from server.models import AuditLog, Guardian, Student, StudentGuardian
from server.roster_import import RosterFileError, RosterRejected, preview, read_roster, save
from tests.server.conftest import World, fresh

HEADER = "code,full_name,class,date_of_birth,guardian_name,guardian_phone,relationship\n"
GOOD = (
    HEADER
    + "HS100,Đỗ Minh Khoa,10A1,2010-03-14,Đỗ Văn Hải,0901234567,father\n"
    + "HS101,Đỗ Thu Trang,10a1,15/08/2011,Đỗ Văn Hải,0901234567,father\n"
    + "HS102,Hồ Gia Huy,,,,,\n"
)


def count(db: Session, model: type) -> int:
    return fresh(db).exec(select(func.count()).select_from(model)).one()


def test_a_valid_roster_previews_clean_and_saves_every_row(db: Session, world: World) -> None:
    data = GOOD.encode()
    found = preview(db, world.school.id, data)
    assert found.ok and [row.line for row in found.rows] == [2, 3, 4]
    assert count(db, Student) == 3  # the preview saved nothing

    saved = save(db, world.school.id, data, actor_id=None)
    db.commit()

    assert (saved.students, saved.guardians_created, saved.links) == (3, 1, 2)
    khoa = db.exec(select(Student).where(Student.code == "HS100")).one()
    trang = db.exec(select(Student).where(Student.code == "HS101")).one()
    assert khoa.class_id == world.school_class.id and trang.class_id == world.school_class.id
    assert str(trang.date_of_birth) == "2011-08-15"
    [father] = db.exec(select(Guardian)).all()
    links = db.exec(select(StudentGuardian).where(StudentGuardian.guardian_id == father.id)).all()
    assert {link.student_id for link in links} == {khoa.id, trang.id}
    imported = db.exec(select(AuditLog).where(AuditLog.action == "student.import")).all()
    assert len(imported) == 3


def test_each_bad_row_is_named_with_its_problems_and_nothing_is_saved(
    db: Session, world: World
) -> None:
    data = (
        HEADER
        + "HS100,Đỗ Minh Khoa,10A1,2010-03-14,,,\n"
        + "HS1,Trùng Mã,10A1,,,,\n"
        + "HS100,Lặp Lại,10A9,2010-13-01,Hồ Văn Nam,0911111111,uncle\n"
        + "bad code!,,10A1,,,,\n"
    ).encode()
    found = preview(db, world.school.id, data)
    assert not found.ok and found.bad_rows == 3
    ok, taken, repeated, malformed = found.rows
    assert ok.errors == []
    assert taken.errors == ["code: đã có học sinh mã HS1 / a student with code HS1 exists"]
    joined = " | ".join(repeated.errors)
    assert "trùng mã với dòng 2" in joined
    assert "không có lớp 10A9" in joined
    assert "date_of_birth: ngày không hợp lệ" in joined
    assert "relationship:" in joined
    assert any(e.startswith("code: sai định dạng") for e in malformed.errors)
    assert any(e.startswith("full_name:") for e in malformed.errors)

    with pytest.raises(RosterRejected) as refused:
        save(db, world.school.id, data, actor_id=None)
    db.rollback()
    assert refused.value.preview.bad_rows == 3
    assert count(db, Student) == 3 and count(db, Guardian) == 0


def test_national_ids_are_imported_and_a_bad_one_is_that_row_s_error(
    db: Session, world: World
) -> None:
    on_record = world.students[0]
    on_record.national_id = "079208001234"
    db.add(on_record)
    db.commit()
    rows = (
        "code,full_name,national_id\n"
        "HS100,Đỗ Minh Khoa,001210004321\n"
        "HS101,Đỗ Thu Trang,\n"
        "HS102,Hồ Gia Huy,{}\n"
    )
    data = rows.format("00121000432").encode()
    found = preview(db, world.school.id, data)
    assert found.bad_rows == 1
    khoa, trang, huy = found.rows
    assert khoa.errors == trang.errors == []
    assert [e.split(" / ")[0] for e in huy.errors] == ["national_id: sai định dạng"]
    with pytest.raises(RosterRejected):
        save(db, world.school.id, data, actor_id=None)
    db.rollback()
    assert count(db, Student) == 3

    for clash, error in (
        (
            "079208001234",
            "national_id: đã có học sinh số định danh 079208001234 / a student "
            "with national ID 079208001234 exists",
        ),
        ("001210004321", "national_id: trùng số định danh với dòng 2 / same national ID as line 2"),
    ):
        assert preview(db, world.school.id, rows.format(clash).encode()).rows[2].errors == [error]

    save(db, world.school.id, rows.format("001210009999").encode(), actor_id=None)
    db.commit()
    saved = dict(fresh(db).exec(select(Student.code, Student.national_id)).all())
    assert (saved["HS100"], saved["HS101"], saved["HS102"]) == (
        "001210004321",
        None,
        "001210009999",
    )


def test_an_xlsx_roster_reads_like_the_csv(db: Session, world: World) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["full_name", "code", "class", "guardian_phone", "guardian_name"])
    sheet.append(["Đỗ Minh Khoa", "HS100", "10A1", 901234567, "Đỗ Văn Hải"])
    buffer = io.BytesIO()
    book.save(buffer)
    [row] = preview(db, world.school.id, buffer.getvalue()).rows
    assert row.errors == []
    assert row.values["code"] == "HS100" and row.values["guardian_phone"] == "901234567"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "tệp rỗng / the file is empty"),
        (b"full_name\nAn\n", "thiếu cột code / missing column(s) code"),
        (HEADER.encode(), "tệp không có dòng dữ liệu / the file has no data rows"),
        ("code,full_name\nHS9,Lê\n".encode("utf-16"), "tệp CSV phải mã hóa UTF-8"),
        (b"PK\x03\x04not really a workbook", "không đọc được tệp Excel"),
    ],
)
def test_an_unusable_file_is_refused_as_a_whole(data: bytes, message: str) -> None:
    with pytest.raises(RosterFileError, match=re.escape(message)):
        read_roster(data)
