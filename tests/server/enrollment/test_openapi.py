"""Schemathesis against the enrollment and gallery operations of the OpenAPI document, as an
admin and as a gate: no request, valid or not, gets a 5xx."""

from __future__ import annotations

from collections import Counter

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from sqlmodel import Session

from server.gallery_publish import FILE_PATH, GalleryPublisher
from tests.server.api.conftest import Seed, bearer_token
from tests.server.enrollment.conftest import GATE_PASSWORD

EXAMPLES_PER_MODE = 5


def test_no_enrollment_or_gallery_operation_answers_with_a_server_error(
    app: FastAPI, seed: Seed, db: Session, wired: GalleryPublisher, gate: str
) -> None:
    wired.publish_site(db, "school-a", reason="test")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    admin = {"Authorization": f"Bearer {bearer_token(db, seed.admin)}"}
    tested, answers = [], Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        if not {"enrollment", "gallery"} & set(operation.tags or ()):
            continue
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        @given(case=strategy)
        @settings(
            max_examples=2 * EXAMPLES_PER_MODE,
            phases=[Phase.explicit, Phase.generate],
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case) -> None:
            gate_facing = case.path in ("/api/v1" + FILE_PATH, "/api/v1/gallery/{site}")
            auth = {"auth": (gate, GATE_PASSWORD)} if gate_facing else {"headers": admin}
            response = case.call(**auth)
            case.validate_response(response, checks=[not_a_server_error])
            answers[case.operation.label, response.status_code] += 1

        call()
        tested.append(operation.label)
    assert len(tested) == 6
    # Every operation was reached past authentication (as the admin or the gate).
    assert not [key for key in answers if key[1] in (401, 403)], answers
