"""The notification settings of a server: its channels and how the dispatcher works.

Meant as the ``notify`` section of :class:`~server.core.config.ServerSettings`
(``CAMPUSGATE_SERVER__NOTIFY__…``); validated at start-up like every other section.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from server.notify.channels import AnyChannelConfig, ChannelName


class NotifySection(BaseModel):
    """Channels by name (the names guardians' preferences list) and the dispatcher's knobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: dict[ChannelName, AnyChannelConfig] = Field(
        default_factory=dict, description="Every school's channels, unless it has its own."
    )
    school_channels: dict[int, dict[ChannelName, AnyChannelConfig]] = Field(
        default_factory=dict,
        description="Schools (by id) with channels of their own, e.g. their own SMS brandname.",
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="The dashboard's address as parents reach it: messages link to it, and "
        "opt-out links need it.",
    )
    opt_out_secret: SecretStr | None = Field(
        default=None, min_length=16, description="Signs opt-out links; unset: no opt-out links."
    )
    send_threads: int = Field(
        default=16, ge=1, le=64, description="Messages one dispatcher has with providers at once."
    )
    lease_s: float = Field(
        default=300.0,
        ge=1.0,
        le=3600.0,
        description="How long a dispatcher holds the rows it took; past it (the dispatcher died) "
        "another one sends them again, with the same idempotency key.",
    )
    max_attempts: int = Field(default=8, ge=1, le=50)
    retry_base_s: float = Field(
        default=10.0, gt=0.0, le=3600.0, description="First retry within this long (jittered)."
    )
    retry_max_s: float = Field(
        default=1800.0, gt=0.0, le=86400.0, description="Longest wait between two attempts."
    )
    poll_interval_s: float = Field(
        default=0.1, gt=0.0, le=60.0, description="How often an idle dispatcher looks for work."
    )
    digest_check_s: float = Field(default=30.0, gt=0.0, le=3600.0)
    push_devices_max: int = Field(
        default=3, ge=1, le=10, description="A guardian's newest push subscriptions sent to."
    )

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> NotifySection:
        configs = [*self.channels.values()]
        configs += [c for own in self.school_channels.values() for c in own.values()]
        slowest = max((config.timeout_s for config in configs), default=0.0)
        # A push row goes to each of a guardian's devices in turn, after waiting behind at most
        # one such send in the dispatcher's queue: the lease must outlast both, or a second
        # dispatcher would take the row while the first is still sending it.
        if self.lease_s <= 2 * self.push_devices_max * slowest:
            raise ValueError(
                f"lease_s must exceed {2 * self.push_devices_max} × the slowest channel's "
                f"timeout_s ({slowest:g} s)"
            )
        return self
