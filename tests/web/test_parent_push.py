"""A parent in the browser: subscribe this browser to Web Push, then an arrival at the gate
reaches the browser's push service as a message only that browser can decrypt.

Chromium's real push service is Google's, out of reach here, so an init script stands in for
``PushManager.subscribe``: it makes a real P-256 key pair and auth secret with WebCrypto in the
page and returns a subscription whose endpoint is a local push service. Everything after that is
real: the page's own code posts the subscription to the API, ingest enqueues the arrival, the
dispatcher encrypts it for those keys and signs VAPID, and the local service checks the VAPID JWT
and decrypts with the page's private key (:class:`FakePushService`)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Browser, Page, expect
from sqlmodel import Session, select

from server.notify.models import PushSubscription
from tests.server.notify.servers import HttpServer
from tests.server.notify.test_webpush import Browser as PushBrowser
from tests.server.notify.test_webpush import FakePushService
from tests.web.conftest import sign_in
from tests.web.harness import LiveSchool

PUSH_STUB = """
(() => {
  const endpoint = ENDPOINT;
  const b64url = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer)))
    .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  let current = null;
  async function make(options) {
    const pair = await crypto.subtle.generateKey(
      { name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
    const raw = await crypto.subtle.exportKey("raw", pair.publicKey);
    const auth = crypto.getRandomValues(new Uint8Array(16));
    const jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
    window.pushSecrets = { d: jwk.d, auth: b64url(auth) };
    const keys = { p256dh: b64url(raw), auth: b64url(auth) };
    return {
      endpoint, expirationTime: null, options,
      getKey: (name) => (name === "p256dh" ? raw : auth.buffer),
      toJSON: () => ({ endpoint, expirationTime: null, keys }),
      unsubscribe: async () => { current = null; return true; },
    };
  }
  PushManager.prototype.subscribe = async function (options) {
    if (!options || !options.applicationServerKey) throw new Error("no applicationServerKey");
    current = current || (await make(options));
    return current;
  };
  PushManager.prototype.getSubscription = async function () { return current; };
})();
"""


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def push_service(school: LiveSchool) -> Iterator[tuple[FakePushService, HttpServer]]:
    fake = FakePushService(None, school.vapid.public)  # type: ignore[arg-type]  # keys come later
    server = HttpServer(fake)
    fake.origin = server.url
    yield fake, server
    server.stop()


@pytest.fixture
def page(browser: Browser, school: LiveSchool, push_service) -> Iterator[Page]:
    _, server = push_service
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        permissions=["notifications"],
        base_url=school.url,
    )
    context.add_init_script(PUSH_STUB.replace("ENDPOINT", repr(f"{server.url}/push/phone-1")))
    yield context.new_page()
    context.close()


def test_a_subscribed_parent_gets_the_arrival_as_a_web_push(
    page: Page, school: LiveSchool, push_service: tuple[FakePushService, HttpServer]
) -> None:
    fake, server = push_service
    child = school.parent_child
    assert child is not None
    sign_in(page, school, LiveSchool.PARENT)
    expect(page).to_have_url(f"{school.url}/parent")
    expect(page.locator(f"#child-{child.id}")).to_contain_text("Nguyễn Văn An")
    expect(page.locator("#push-state")).to_have_text("Trình duyệt này chưa nhận thông báo")

    page.get_by_role("button", name="Bật thông báo").click()

    expect(page.locator("#push-state")).to_have_attribute("data-subscribed", "true")
    secrets = page.evaluate("window.pushSecrets")
    key = ec.derive_private_key(int.from_bytes(unb64(secrets["d"]), "big"), ec.SECP256R1())
    fake.browser = PushBrowser(key, unb64(secrets["auth"]))
    with Session(school.engine) as db:
        [stored] = db.exec(select(PushSubscription)).all()
    assert stored.endpoint == f"{server.url}/push/phone-1"

    school.gate_event(child)

    school.wait_until(lambda: bool(fake.delivered), "the push at the local push service")
    request, claims, payload = fake.delivered[0]
    assert request.path == "/push/phone-1"
    assert claims["sub"] == "mailto:admin@school-a.edu.vn"
    assert payload["title"] == "Nguyễn Văn An đã đến trường"
    assert "Cổng chính" in payload["body"]

    page.reload()
    expect(page.locator(f"#child-{child.id} .today li")).to_contain_text("Đến trường")
    expect(page.locator(f"#child-{child.id} .today li")).to_have_attribute("data-status", "present")


def test_a_parent_sends_a_leave_request_and_it_is_listed(page: Page, school: LiveSchool) -> None:
    child = school.parent_child
    assert child is not None
    sign_in(page, school, LiveSchool.PARENT)
    form = page.locator("#leave-form")
    form.get_by_label("Lý do").select_option("medical")
    form.get_by_label("Ghi chú").fill("Cháu bị sốt")
    form.get_by_role("button", name="Gửi đơn xin nghỉ").click()

    expect(page.locator("#toast")).to_have_text("Đã gửi đơn")
    expect(page.locator(f"#child-{child.id}")).to_contain_text("Ốm / khám bệnh · Chờ duyệt")
