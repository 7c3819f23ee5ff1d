"""Any HTTP SMS gateway a school already pays for, described in configuration instead of code.

The request is a URL template, an optional body template (JSON of any shape, or form fields) and
headers; ``$name`` placeholders are filled at send time — ``$phone`` (84…), ``$phone_national``
(0…), ``$phone_e164`` (+84…), ``$text``, ``$unicode`` ("1"/"0"), ``$request_id`` (from the
idempotency key) and ``$secret`` (the API key, kept as a secret and out of every template). A
success rule says which HTTP statuses, or which value of a field in the JSON reply, mean accepted,
and where the gateway's message id is.
"""

from __future__ import annotations

from string import Template
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from server.notify.channel import Channel, Delivery, Outgoing, provider_reference, snippet
from server.notify.channels.http_gateway import HttpGateway, HttpReply
from server.notify.channels.sms import SmsConfig, sms_parts

PLACEHOLDERS = frozenset(
    {"phone", "phone_national", "phone_e164", "text", "unicode", "request_id", "secret"}
)


class SuccessRule(BaseModel):
    """How to read the gateway's reply. Without ``json_field``, an HTTP status in
    ``status_codes`` is success; with it, that field's value decides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status_codes: frozenset[int] = frozenset({200, 201, 202})
    json_field: str | None = Field(default=None, description='Dotted path, e.g. "result.code".')
    accepted_values: frozenset[str] = frozenset()
    temporary_values: frozenset[str] = frozenset()
    id_field: str | None = Field(default=None, description="Dotted path of the message id.")

    @model_validator(mode="after")
    def _values_with_field(self) -> SuccessRule:
        if self.json_field and not self.accepted_values:
            raise ValueError("json_field needs accepted_values")
        return self


class BasicAuth(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    username: str
    password: SecretStr


class GenericSmsConfig(SmsConfig):
    kind: Literal["generic_sms"] = "generic_sms"
    method: Literal["POST", "GET"] = "POST"
    url: str = Field(description="URL template; placeholders are URL-encoded.")
    headers: dict[str, str] = Field(default_factory=dict, description="Header templates.")
    basic_auth: BasicAuth | None = None
    secret: SecretStr | None = Field(default=None, description="The value of $secret.")
    body_format: Literal["json", "form", "none"] = "json"
    body: dict[str, Any] = Field(
        default_factory=dict,
        description="Body template: a JSON object whose strings may hold placeholders "
        "(form: a flat object of strings).",
    )
    request_id_length: int = Field(default=64, ge=8, le=128)
    deduplicates: bool = Field(
        default=False, description="The gateway drops a second request with the same $request_id."
    )
    success: SuccessRule = SuccessRule()

    @model_validator(mode="after")
    def _valid_templates(self) -> GenericSmsConfig:
        templates = [self.url, *self.headers.values(), *_strings(self.body)]
        for text in templates:
            template = Template(text)
            if not template.is_valid():
                raise ValueError(f"bad placeholder in {text!r} (write $$ for a literal $)")
            unknown = set(template.get_identifiers()) - PLACEHOLDERS
            if unknown:
                raise ValueError(f"unknown placeholder(s) {sorted(unknown)} in {text!r}")
            if "secret" in template.get_identifiers() and self.secret is None:
                raise ValueError(f"{text!r} uses $secret but no secret is set")
        if self.body_format == "form" and not all(isinstance(v, str) for v in self.body.values()):
            raise ValueError("a form body is a flat object of strings")
        if self.body_format == "none" and self.body:
            raise ValueError("body_format 'none' takes no body")
        return self


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _fill(value: Any, values: dict[str, str]) -> Any:
    """The body template with every string's placeholders filled, other JSON values kept."""
    if isinstance(value, str):
        return Template(value).substitute(values)
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    return value


def _lookup(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


class GenericSmsChannel(Channel):
    kind = "generic_sms"
    address = "phone"

    def __init__(self, name: str, config: GenericSmsConfig) -> None:
        super().__init__(name)
        self.config = config
        # Per instance: whether a retry is harmless depends on the gateway configured.
        self.deduplicates = config.deduplicates
        auth = config.basic_auth
        self._http = HttpGateway(
            config.timeout_s,
            auth=(auth.username, auth.password.get_secret_value()) if auth else None,
        )

    def send(self, message: Outgoing) -> Delivery:
        parts = sms_parts(message, self.config)
        if isinstance(parts, Delivery):
            return parts
        phone, sms = parts
        config = self.config
        values = {
            "phone": phone.international,
            "phone_national": phone.national,
            "phone_e164": phone.e164,
            "text": sms.text,
            "unicode": "1" if sms.unicode else "0",
            "request_id": provider_reference(message.idempotency_key, config.request_id_length),
            "secret": config.secret.get_secret_value() if config.secret else "",
        }
        url = Template(config.url).substitute({k: quote(v, safe="") for k, v in values.items()})
        body = _fill(config.body, values)
        reply = self._http.request(
            config.method,
            url,
            json_body=body if config.body_format == "json" else None,
            form=body if config.body_format == "form" else None,
            headers={name: Template(v).substitute(values) for name, v in config.headers.items()},
        )
        if isinstance(reply, Delivery):
            return reply
        return self._judge(reply)

    def _judge(self, reply: HttpReply) -> Delivery:
        rule = self.config.success
        data = reply.json_object()
        provider_id = _lookup(data, rule.id_field) if rule.id_field else None
        provider_id = None if provider_id is None else str(provider_id)
        if rule.json_field is None:
            if reply.status in rule.status_codes:
                return Delivery.accepted(provider_id)
            return Delivery.permanent(f"gateway HTTP {reply.status}: {snippet(reply.text)}")
        value = _lookup(data, rule.json_field)
        verdict = f"gateway {rule.json_field}={value!r}: {snippet(reply.text)}"
        if value is not None and str(value) in rule.accepted_values:
            return Delivery.accepted(provider_id)
        if value is not None and str(value) in rule.temporary_values:
            return Delivery.temporary(verdict)
        return Delivery.permanent(verdict)

    def close(self) -> None:
        self._http.close()
