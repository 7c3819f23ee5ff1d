"""Behaviour of the 1:N gallery: who it finds, when it says unknown, how it changes and travels.

Random unit vectors in 128-d are nearly orthogonal (cosine ≈ ±0.1), so a random "identity centre"
per person with a little noise per photo gives a gallery whose right answers are known.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.gallery import NO_SCORE, Gallery, GalleryError

DIM = 128
PACK = "dlib-r29-mtcnn"
THRESHOLD = 0.6

seeds = st.integers(min_value=0, max_value=2**32 - 1)
numpy_settings = settings(deadline=None, max_examples=40)


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def noisy(rng: np.random.Generator, centres: np.ndarray, noise: float = 0.3) -> np.ndarray:
    """Unit copies of ``centres`` moved by noise of norm ``noise`` (cosine to centre ≈ 0.96)."""
    return unit(centres + noise * unit(rng.standard_normal(centres.shape)))


def enrol(
    rng: np.random.Generator, people: int, photos: int, threshold: float = THRESHOLD
) -> tuple[Gallery, list[str], np.ndarray]:
    """A gallery of ``people`` with ``photos`` noisy photos each; returns it, ids and centres."""
    gallery = Gallery(PACK, DIM, threshold)
    ids = [f"HS{index:06d}" for index in range(people)]
    centres = unit(rng.standard_normal((people, DIM)))
    for person_id, centre in zip(ids, centres, strict=True):
        photos_of = noisy(rng, np.repeat(centre[None], photos, axis=0))
        gallery.add(person_id, photos_of, [f"{person_id}/{n}" for n in range(photos)])
    return gallery, ids, centres


@numpy_settings
@given(seed=seeds, people=st.integers(1, 30), photos=st.integers(1, 6))
def test_noisy_copy_of_an_enrolled_face_finds_its_person(seed: int, people: int, photos: int):
    rng = np.random.default_rng(seed)
    gallery, ids, centres = enrol(rng, people, photos)

    matches = gallery.search(noisy(rng, centres))

    assert matches.known.all()
    assert matches.person_ids.tolist() == ids
    assert (matches.scores >= THRESHOLD).all()
    assert (matches.runner_up_scores < THRESHOLD).all()
    assert matches.gallery_version == gallery.version


def test_a_stranger_is_unknown_below_the_threshold_but_a_lower_threshold_admits_them():
    rng = np.random.default_rng(1)
    gallery, ids, _ = enrol(rng, people=20, photos=3)
    stranger = unit(rng.standard_normal(DIM))

    match = gallery.search(stranger)[0]

    assert not match.known
    assert match.person_id is None
    assert match.best_id in ids
    assert NO_SCORE < match.score < THRESHOLD
    lenient = gallery.search(stranger, threshold=match.score - 0.01)[0]
    assert lenient.known and lenient.person_id == match.best_id


@pytest.mark.parametrize("queries", [1, 7])
def test_empty_gallery_answers_unknown_for_every_query(queries: int):
    gallery = Gallery(PACK, DIM, THRESHOLD)
    rng = np.random.default_rng(2)

    matches = gallery.search(unit(rng.standard_normal((queries, DIM))), threshold=-0.99)

    assert len(matches) == queries
    assert not matches.known.any()
    assert matches.best_ids.tolist() == [None] * queries
    assert matches.runner_up_ids.tolist() == [None] * queries
    assert (matches.scores == NO_SCORE).all() and (matches.runner_up_scores == NO_SCORE).all()


@numpy_settings
@given(
    seed=seeds,
    rows_per_person=st.lists(st.integers(1, 8), min_size=1, max_size=12),
    queries=st.integers(1, 5),
)
def test_person_score_is_their_best_row_and_runner_up_the_next_person(
    seed: int, rows_per_person: list[int], queries: int
):
    rng = np.random.default_rng(seed)
    gallery = Gallery(PACK, DIM, THRESHOLD)
    rows: dict[str, np.ndarray] = {}
    for index, count in enumerate(rows_per_person):
        rows[f"P{index}"] = unit(rng.standard_normal((count, DIM)))
        gallery.add(f"P{index}", rows[f"P{index}"])
    # Queries near random enrolled rows, so per-person maxima are well separated from noise.
    picked = np.concatenate(list(rows.values()))[rng.integers(0, len(gallery), queries)]
    query_vectors = noisy(rng, picked, noise=0.8)

    matches = gallery.search(query_vectors)

    for query, match in zip(query_vectors, (matches[i] for i in range(queries)), strict=True):
        expected = sorted(
            ((float(np.max(vectors @ query)), person) for person, vectors in rows.items()),
            reverse=True,
        )
        assert match.best_id == expected[0][1]
        assert match.score == pytest.approx(expected[0][0], abs=1e-5)
        if len(rows) > 1:
            assert match.runner_up_id == expected[1][1]
            assert match.runner_up_score == pytest.approx(expected[1][0], abs=1e-5)
            assert match.margin == pytest.approx(expected[0][0] - expected[1][0], abs=1e-5)
        else:
            assert match.runner_up_id is None and match.runner_up_score == NO_SCORE


def test_zero_and_non_finite_queries_are_unknown_without_nan():
    rng = np.random.default_rng(3)
    gallery, ids, centres = enrol(rng, people=5, photos=2)
    queries = np.stack(
        [np.zeros(DIM), np.full(DIM, np.nan), np.full(DIM, np.inf), centres[3] * 1e30]
    )

    matches = gallery.search(queries, threshold=-0.999)

    assert matches.known.tolist() == [False, False, False, True]
    assert matches.best_ids.tolist() == [None, None, None, ids[3]]
    assert not np.isnan(matches.scores).any() and not np.isnan(matches.runner_up_scores).any()
    assert (matches.scores[:3] == NO_SCORE).all()


def test_batch_search_equals_searching_one_query_at_a_time():
    rng = np.random.default_rng(4)
    gallery, _, centres = enrol(rng, people=40, photos=4)
    queries = np.concatenate([noisy(rng, centres[:10]), unit(rng.standard_normal((6, DIM)))])

    batch = gallery.search(queries)
    single = [gallery.search(query)[0] for query in queries]

    assert batch.best_ids.tolist() == [match.best_id for match in single]
    assert batch.runner_up_ids.tolist() == [match.runner_up_id for match in single]
    assert batch.known.tolist() == [match.known for match in single]
    # A batch runs as a matrix product, one query as a matrix-vector one: same up to rounding.
    np.testing.assert_allclose(batch.scores, [match.score for match in single], atol=1e-6)


def test_version_counts_every_change_and_only_changes():
    rng = np.random.default_rng(5)
    gallery = Gallery(PACK, DIM, THRESHOLD)
    assert gallery.version == 0

    assert gallery.add("HS000001", unit(rng.standard_normal((3, DIM))), ["a", "b", "c"]) == 1
    assert gallery.add("HS000002", unit(rng.standard_normal(DIM))) == 2
    assert gallery.add("HS000001", unit(rng.standard_normal(DIM)), ["d"]) == 3
    assert gallery.remove_entries(["b"]) == 4
    assert gallery.remove_entries(["no-such-entry"]) == 4
    assert gallery.remove_person("HS000404") == 4
    assert gallery.remove_person("HS000002") == 5
    assert gallery.version == 5
    assert gallery.persons == ("HS000001",)
    assert len(gallery) == 3


@numpy_settings
@given(seed=seeds, people=st.integers(2, 15), removed=st.integers(0, 14))
def test_a_removed_person_is_never_returned(seed: int, people: int, removed: int):
    rng = np.random.default_rng(seed)
    gallery, ids, centres = enrol(rng, people, photos=3)
    gone = ids[removed % people]

    gallery.remove_person(gone)
    matches = gallery.search(np.concatenate([noisy(rng, centres), centres]), threshold=-0.99)

    assert gone not in gallery.persons
    assert gone not in matches.best_ids.tolist()
    assert gone not in matches.runner_up_ids.tolist()
    assert len(gallery) == 3 * (people - 1)


def test_removing_one_entry_keeps_the_persons_other_photos():
    rng = np.random.default_rng(6)
    gallery, _, _ = enrol(rng, people=3, photos=1)
    photos = noisy(rng, np.repeat(unit(rng.standard_normal((1, DIM))), 3, axis=0), noise=0.5)
    gallery.add("HS999999", photos, ["p1", "p2", "p3"])
    assert gallery.search(photos[1])[0].score == pytest.approx(1.0)

    gallery.remove_entries(["p2"])
    match = gallery.search(photos[1])[0]

    assert len(gallery) == 5
    assert match.best_id == "HS999999"
    assert match.score < 0.999


@pytest.mark.parametrize(
    ("person_id", "embeddings", "entry_ids"),
    [
        ("HS000100", np.zeros(DIM), None),
        ("HS000100", np.full(DIM, np.nan), None),
        ("HS000100", np.ones((0, DIM)), None),
        ("HS000100", np.ones(DIM + 1), None),
        ("HS000100", np.ones((2, DIM)), ["only-one"]),
        ("HS000100", np.ones((2, DIM)), ["twice", "twice"]),
        ("HS000100", np.ones(DIM), ["HS000000/0"]),
        ("HS000100", np.ones(DIM), [""]),
        ("", np.ones(DIM), None),
        ("HS\x00100", np.ones(DIM), None),
    ],
)
def test_bad_additions_are_refused_and_change_nothing(person_id, embeddings, entry_ids):
    gallery, _, _ = enrol(np.random.default_rng(7), people=2, photos=2)
    before = (gallery.version, len(gallery), gallery.persons, gallery.to_bytes())

    with pytest.raises(GalleryError):
        gallery.add(person_id, embeddings, entry_ids)

    assert (gallery.version, len(gallery), gallery.persons, gallery.to_bytes()) == before


def test_embeddings_of_another_dimension_are_refused_naming_the_pack():
    gallery, _, _ = enrol(np.random.default_rng(8), people=2, photos=1)
    arcface = unit(np.random.default_rng(9).standard_normal((2, 512)))

    with pytest.raises(GalleryError, match=r"dlib-r29-mtcnn.*128-d"):
        gallery.add("HS000200", arcface)
    with pytest.raises(GalleryError, match=r"dlib-r29-mtcnn.*128-d"):
        gallery.search(arcface)


@pytest.mark.parametrize(
    ("pack", "dim", "threshold"),
    [("", DIM, THRESHOLD), (PACK, 0, THRESHOLD), (PACK, DIM, 1.5), (PACK, DIM, float("nan"))],
)
def test_a_gallery_needs_a_pack_a_dimension_and_a_cosine_threshold(pack, dim, threshold):
    with pytest.raises(GalleryError):
        Gallery(pack, dim, threshold)


@numpy_settings
@given(seed=seeds, people=st.integers(0, 20), half=st.booleans())
def test_round_trip_preserves_the_gallery_and_its_answers(seed: int, people: int, half: bool):
    rng = np.random.default_rng(seed)
    gallery, _, centres = enrol(rng, people, photos=3, threshold=0.55)
    gallery.remove_entries(["HS000000/1"])
    queries = np.concatenate([noisy(rng, centres), unit(rng.standard_normal((3, DIM)))])

    copy = Gallery.from_bytes(gallery.to_bytes(half=half))
    before, after = gallery.search(queries), copy.search(queries)

    assert (copy.pack, copy.dim, copy.threshold) == (PACK, DIM, 0.55)
    assert (copy.version, copy.persons, len(copy)) == (
        gallery.version,
        gallery.persons,
        len(gallery),
    )
    assert after.best_ids.tolist() == before.best_ids.tolist()
    assert after.known.tolist() == before.known.tolist()
    tolerance = 1e-3 if half else 0.0
    np.testing.assert_allclose(after.scores, before.scores, rtol=0, atol=tolerance)
    np.testing.assert_allclose(after.runner_up_scores, before.runner_up_scores, atol=tolerance)
    assert copy.remove_entries(["HS000000/2"]) == gallery.remove_entries(["HS000000/2"])


@numpy_settings
@given(seed=seeds, people=st.integers(1, 50), photos=st.integers(1, 5))
def test_float16_storage_moves_scores_by_less_than_a_thousandth(seed, people, photos):
    rng = np.random.default_rng(seed)
    gallery = Gallery(PACK, DIM, THRESHOLD)
    for index in range(people):
        gallery.add(f"P{index}", unit(rng.standard_normal((photos, DIM))))
    queries = unit(rng.standard_normal((8, DIM)))

    before = gallery.search(queries)
    after = Gallery.from_bytes(gallery.to_bytes(half=True)).search(queries)

    assert np.abs(after.scores - before.scores).max() < 1e-3
    assert np.abs(after.runner_up_scores - before.runner_up_scores).max() < 1e-3


def test_float16_storage_is_about_half_the_size():
    gallery, _, _ = enrol(np.random.default_rng(10), people=100, photos=5)

    half, full = len(gallery.to_bytes(half=True)), len(gallery.to_bytes(half=False))

    assert half < 0.55 * full


@pytest.fixture(scope="module")
def blob() -> bytes:
    gallery, _, _ = enrol(np.random.default_rng(11), people=4, photos=2)
    return gallery.to_bytes()


@settings(deadline=None, max_examples=200)
@given(data=st.data())
def test_a_flipped_byte_anywhere_is_refused(blob: bytes, data):
    position = data.draw(st.integers(0, len(blob) - 1))
    flip = data.draw(st.integers(1, 255))
    damaged = bytearray(blob)
    damaged[position] ^= flip

    with pytest.raises(GalleryError):
        Gallery.from_bytes(bytes(damaged))


@settings(deadline=None, max_examples=200)
@given(data=st.data())
def test_a_truncated_or_extended_blob_is_refused(blob: bytes, data):
    length = data.draw(st.integers(0, len(blob) - 1))

    with pytest.raises(GalleryError):
        Gallery.from_bytes(blob[:length])
    with pytest.raises(GalleryError):
        Gallery.from_bytes(blob + b"\x00")


def test_wrong_magic_is_refused_as_not_a_gallery(blob: bytes):
    with pytest.raises(GalleryError, match="magic"):
        Gallery.from_bytes(b"PK\x03\x04" + blob[4:])


def _resigned(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()


def test_a_well_checksummed_but_inconsistent_blob_is_still_refused():
    gallery, _, _ = enrol(np.random.default_rng(12), people=2, photos=2)
    body = bytearray(gallery.to_bytes(half=False)[:-32])
    header_size = 5 + 1 + 1 + 1 + 4 + 4 + 8 + 8 + 4 + 4
    first_value = header_size + len(PACK)

    future = bytearray(body)
    future[5] = 99
    with pytest.raises(GalleryError, match="format"):
        Gallery.from_bytes(_resigned(bytes(future)))

    stretched = bytearray(body)
    stretched[first_value : first_value + 4] = np.float32(7.0).tobytes()
    with pytest.raises(GalleryError, match="unit"):
        Gallery.from_bytes(_resigned(bytes(stretched)))


def test_empty_gallery_round_trips():
    gallery = Gallery(PACK, 512, 0.4)

    copy = Gallery.from_bytes(gallery.to_bytes())

    assert (copy.pack, copy.dim, copy.threshold, copy.version, len(copy)) == (PACK, 512, 0.4, 0, 0)
    assert not copy.search(np.ones(512)).known.any()


def test_save_and_load_round_trip_leaving_no_temporary_files(tmp_path):
    gallery, _, centres = enrol(np.random.default_rng(13), people=5, photos=2)
    path = tmp_path / "gallery.cggal"
    Gallery(PACK, DIM, THRESHOLD).save(path)

    gallery.save(path)
    loaded = Gallery.load(path)

    assert [p.name for p in tmp_path.iterdir()] == ["gallery.cggal"]
    assert loaded.version == gallery.version
    assert loaded.search(centres).best_ids.tolist() == gallery.search(centres).best_ids.tolist()


def test_a_failed_save_keeps_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "gallery.cggal"
    old = Gallery(PACK, DIM, THRESHOLD)
    old.save(path)
    gallery, _, _ = enrol(np.random.default_rng(14), people=2, photos=1)

    def broken(self, *, half=True):
        raise OSError("disk full")

    monkeypatch.setattr(Gallery, "to_bytes", broken)
    with pytest.raises(OSError, match="disk full"):
        gallery.save(path)

    assert [p.name for p in tmp_path.iterdir()] == ["gallery.cggal"]
    monkeypatch.undo()
    assert path.read_bytes() == old.to_bytes()


def test_loading_a_missing_file_is_a_gallery_error(tmp_path):
    with pytest.raises(GalleryError, match="cannot read"):
        Gallery.load(tmp_path / "absent.cggal")


def test_add_rows_enrolls_a_whole_school_in_one_version() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((12, 128)).astype(np.float32)
    people = [f"HS{i // 3:03d}" for i in range(12)]
    gallery = Gallery(pack="p", dim=128, threshold=0.5)
    assert gallery.add_rows(people, vectors, [f"photo-{i}" for i in range(12)]) == 1
    assert gallery.persons == ("HS000", "HS001", "HS002", "HS003")
    found = gallery.search(vectors[[1, 7]])
    assert list(found.person_ids) == ["HS000", "HS002"]
    with pytest.raises(GalleryError, match="3 person ids given for 2 embeddings"):
        gallery.add_rows(["a", "b", "c"], vectors[:2])
    with pytest.raises(GalleryError, match="already in the gallery"):
        gallery.add_rows(["x"], vectors[:1], ["photo-0"])
    assert gallery.version == 1 and len(gallery) == 12


# The card table (UID → student) travels in the same signed file, for the gates' card + face rule.
def gallery_with_faces() -> Gallery:
    gallery = Gallery("dlib-r29-mtcnn", 8, 0.6)
    rng = np.random.default_rng(5)
    for person in ("HS0001", "HS0002"):
        gallery.add(person, rng.standard_normal((2, 8)))
    return gallery


def test_the_card_table_travels_in_the_gallery_file() -> None:
    gallery = gallery_with_faces()
    version = gallery.set_cards({"04A1B2C3": "HS0001", "0A1B2C3D4E": "HS0003"})  # HS0003: no face

    copy = Gallery.from_bytes(gallery.to_bytes())

    assert version == 3 and copy.version == 3 and dict(copy.cards) == dict(gallery.cards)
    assert copy.card_owner("04A1B2C3") == "HS0001" and copy.card_owner("FFFFFFFF") is None
    assert gallery.to_bytes()[5] == 2  # format 2: with a card table


def test_a_gallery_without_cards_keeps_the_old_format_and_reads_as_before() -> None:
    gallery = gallery_with_faces()
    blob = gallery.to_bytes()

    assert blob[5] == 1
    assert dict(Gallery.from_bytes(blob).cards) == {}


@pytest.mark.parametrize(
    "cards",
    [{"04a1b2c3": "HS0001"}, {"04A1B2": "HS0001"}, {"04A1B2C3\n": "HS0001"}, {"04A1B2C3": ""}],
)
def test_a_bad_card_table_is_refused_and_changes_nothing(cards) -> None:
    gallery = gallery_with_faces()
    gallery.set_cards({"04D5E6F7": "HS0002"})
    version = gallery.version

    with pytest.raises(GalleryError):
        gallery.set_cards(cards)

    assert gallery.version == version and dict(gallery.cards) == {"04D5E6F7": "HS0002"}
    assert gallery.set_cards({"04D5E6F7": "HS0002"}) == version  # the same table: no change


def test_erasing_a_student_removes_their_cards_too() -> None:
    gallery = Gallery("dlib-r29-mtcnn", 8, 0.6)
    gallery.set_cards({"04A1B2C3": "HS0001", "04D5E6F7": "HS0002"})

    version = gallery.remove_person("HS0001")  # a card-only student: no face rows at all

    assert version == 2 and dict(gallery.cards) == {"04D5E6F7": "HS0002"}


def test_every_damaged_byte_of_a_gallery_with_cards_is_refused() -> None:
    gallery = gallery_with_faces()
    gallery.set_cards({"04A1B2C3": "HS0001"})
    blob = gallery.to_bytes()

    for position in range(len(blob)):
        damaged = bytearray(blob)
        damaged[position] ^= 0x01
        with pytest.raises(GalleryError):
            Gallery.from_bytes(bytes(damaged))


def test_a_well_checksummed_but_broken_card_table_is_refused() -> None:
    gallery = gallery_with_faces()
    gallery.set_cards({"04A1B2C3": "HS0001"})
    body = gallery.to_bytes()[:-32]
    odd = body.replace(b"04A1B2C3\x00HS0001", b"04A1B2C3\x00HS\x00001")  # same size, 3 fields

    with pytest.raises(GalleryError, match="without an owner"):
        Gallery.from_bytes(odd + hashlib.sha256(odd).digest())
