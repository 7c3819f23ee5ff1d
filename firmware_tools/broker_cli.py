"""``gatectl broker``: the deployment's CA and the broker's TLS certificate, and Mosquitto's
configuration, password file and ACL rendered from the server's device registry.

The registry is the one source of truth: every enabled gate with a secret gets an account
(``{site}.{device}``, the secret's ``$7$`` hash as the server stores it) and an ACL block that
lets it write only under its own topics. Rendering again after a change and reloading the broker
(SIGHUP) applies the change without a restart: Mosquitto disconnects at once any client whose
account went away (see :mod:`broker.mosquitto_reload`). It publishes no last will for such a
client, so after the reload gatectl deletes the retained status of every gate that lost its
account (:func:`clear_stale_statuses`), or it would say "online" for ever.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any

import paho.mqtt.client as mqtt
import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rich.console import Console

from broker.mosquitto_config import (
    SERVER_USERNAME,
    DeviceAccount,
    MosquittoLayout,
    render_mosquitto,
    rendered_plain_port,
    update_credentials,
)
from broker.mosquitto_reload import ReloadError, reload_mosquitto
from broker.passwords import hash_password, new_password, read_password_file
from broker.pki import create_ca, issue_server_cert
from broker.topics import Channel, TopicError, parse_topic, subscription
from firmware_tools.broker_session import BrokerConnectError, BrokerTarget, close, connect
from firmware_tools.server_api import ApiError, ServerApi
from firmware_tools.server_options import AsJson, ServerCa, ServerUrl, Token, fail, server_api

app = typer.Typer(
    help="The broker: CA and TLS certificates, Mosquitto's config from the device registry.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
console = Console(stderr=True)

SERVICE_PASSWORD_FILE = "campusgate-server.password"
"""Where ``broker render`` leaves the server's broker password it made (mode 0600)."""
CERT_FILES = ("ca.crt", "server.crt", "server.key")

BrokerDir = Annotated[
    Path,
    typer.Option(
        "--broker-dir",
        metavar="DIR",
        help="The broker's directory, as `gatectl broker render --out` made it.",
    ),
]
ServicePassword = Annotated[
    str | None,
    typer.Option(
        "--broker-password",
        envvar="GATECTL_BROKER_PASSWORD",
        metavar="PASSWORD",
        help="The server's broker password, to delete cut-off gates' statuses after the reload "
        f"(default: the one in DIR/{SERVICE_PASSWORD_FILE}).",
    ),
]
STATUS_CLEAR_TIMEOUT_S = 10.0


class StatusClearError(RuntimeError):
    """The broker kept a cut-off gate's retained status; the message says which and why."""


def check_broker_dir(broker_dir: Path) -> None:
    """Exit 1 unless ``broker render`` made ``broker_dir``: said before anything changes."""
    layout = MosquittoLayout(data_dir=broker_dir)
    if not (layout.password_file.is_file() and layout.acl_file.is_file()):
        fail(f"{broker_dir} holds no rendered broker: run `gatectl broker render --out` first")


def service_target(broker_dir: Path, password: str | None) -> BrokerTarget:
    """How gatectl signs in to the broker in ``broker_dir`` as the server's account (as `gate
    status` does): on its plain loopback listener, with ``password`` or else the one `broker
    render` left in the directory. Exit 1 when either is unknown, said before anything changes."""
    layout = MosquittoLayout(data_dir=broker_dir)
    try:
        port = rendered_plain_port(layout)
    except (OSError, ValueError) as exc:
        fail(f"cannot tell the broker's loopback port from {layout.conf_file}: {exc}")
    if not password:
        try:
            password = (broker_dir / SERVICE_PASSWORD_FILE).read_text().strip()
        except FileNotFoundError:
            fail(
                f"no {broker_dir / SERVICE_PASSWORD_FILE}: give the server's broker password "
                "(--broker-password or GATECTL_BROKER_PASSWORD) to clear cut-off gates' statuses"
            )
    return BrokerTarget("127.0.0.1", port, SERVER_USERNAME, password)


def sync_broker(
    api: ServerApi,
    broker_dir: Path,
    *,
    reload: bool = True,
    service: BrokerTarget | None = None,
    new_credential: Collection[tuple[str, str]] = (),
) -> dict[str, Any]:
    """Write the broker's password file and ACL in ``broker_dir`` from the registry (service
    accounts kept) and reload the broker; with ``service``, then delete the retained status of
    every gate the reload cut off: those gone from the registry, and the ``new_credential``
    ones (SITE, DEVICE), whose session on the old secret the reload ended. What was done, for
    the report. Raises :class:`ApiError`, :class:`ReloadError`, :class:`BrokerConnectError`,
    :class:`StatusClearError`, or FileNotFoundError when nothing was rendered."""
    layout = MosquittoLayout(data_dir=broker_dir)
    if not layout.password_file.is_file():
        raise FileNotFoundError(layout.password_file)
    devices, hashes = _registry(api)
    update_credentials(layout, devices, hashes)
    pid = reload_mosquitto(layout.pid_file) if reload else None
    done: dict[str, Any] = {
        "broker_dir": str(broker_dir),
        "gates": len(devices),
        "reloaded_pid": pid,
    }
    if reload and service is not None:
        keep = {(d.site, d.device) for d in devices} - set(new_credential)
        done["cleared_statuses"] = clear_stale_statuses(service, keep)
    return done


def sync_or_fail(
    api: ServerApi,
    broker_dir: Path,
    *,
    reload: bool = True,
    service: BrokerTarget | None = None,
    new_credential: Collection[tuple[str, str]] = (),
) -> dict[str, Any]:
    """:func:`sync_broker`, with any failure reported as gatectl's exit 1."""
    check_broker_dir(broker_dir)
    try:
        return sync_broker(
            api, broker_dir, reload=reload, service=service, new_credential=new_credential
        )
    except FileNotFoundError:
        fail(f"{broker_dir} holds no rendered broker: run `gatectl broker render --out` first")
    except (ApiError, ReloadError) as exc:
        fail(f"the broker was not updated: {exc}")
    except (BrokerConnectError, StatusClearError) as exc:
        fail(f"the broker was updated and reloaded, but cut-off gates may still show online: {exc}")


def clear_stale_statuses(
    service: BrokerTarget,
    keep: Collection[tuple[str, str]],
    timeout_s: float = STATUS_CLEAR_TIMEOUT_S,
) -> list[str]:
    """Delete the retained status of every gate on the broker but the ``keep`` ones (SITE,
    DEVICE) with a zero-length retained message, MQTT's way; return them as SITE/DEVICE.

    Mosquitto publishes no will for a gate its reload cut off (revoked, disabled, removed), so
    that gate's status would say "online" for ever. Reading the statuses again checks the
    deletions: a broker that has not yet applied the reload's ACL (SIGHUP is handled after
    ``kill`` returns, and MQTT 3.1.1 acknowledges a refused publish all the same) is asked
    again until ``timeout_s`` has passed. Raises :class:`BrokerConnectError` when the service
    account cannot sign in, :class:`StatusClearError` when a status stays."""
    deadline = time.monotonic() + timeout_s
    client = connect(service)
    try:
        stale = _stale_statuses(client, keep, timeout_s)
        cleared = sorted(f"{site}/{device}" for site, device in stale.values())
        while stale:
            if time.monotonic() > deadline:
                raise StatusClearError(
                    f"the broker keeps the status of {', '.join(sorted(stale))}: does its ACL "
                    f"let {service.username} write cg/v1/+/+/status?"
                )
            for topic in stale:
                _delete_retained(client, topic, timeout_s)
            stale = _stale_statuses(client, keep, timeout_s)
            if stale:
                time.sleep(0.2)
        return cleared
    finally:
        close(client)


def _stale_statuses(
    client: mqtt.Client, keep: Collection[tuple[str, str]], timeout_s: float
) -> dict[str, tuple[str, str]]:
    """The retained statuses of gates not in ``keep``: their topics, with (SITE, DEVICE).

    Subscribing makes the broker send every retained status; the UNSUBACK of the unsubscribe
    sent right after comes behind the last of them, since the broker answers one client's
    packets in order, so it marks the end without waiting out a timer. QoS 0: a retained
    message at QoS 1 would wait for the in-flight window, behind the UNSUBACK."""
    found: dict[str, tuple[str, str]] = {}
    ended = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            topic = parse_topic(message.topic)
        except (TopicError, UnicodeDecodeError):
            return
        if message.retain and topic.channel is Channel.STATUS and topic.device is not None:
            found[message.topic] = (topic.site, topic.device)

    client.on_message = on_message
    client.on_unsubscribe = lambda *_: ended.set()
    statuses = subscription(Channel.STATUS)
    client.subscribe(statuses, qos=0)
    client.unsubscribe(statuses)
    if not ended.wait(timeout_s):
        raise StatusClearError(f"no answer from the broker within {timeout_s:g} s")
    return {topic: gate for topic, gate in found.items() if gate not in keep}


def _delete_retained(client: mqtt.Client, topic: str, timeout_s: float) -> None:
    """Publish the zero-length retained message that makes the broker forget ``topic``'s."""
    try:
        client.publish(topic, b"", qos=1, retain=True).wait_for_publish(timeout_s)
    except (RuntimeError, ValueError) as exc:
        raise StatusClearError(f"cannot delete the status on {topic}: {exc}") from None


def _registry(api: ServerApi) -> tuple[list[DeviceAccount], dict[str, str]]:
    accounts = api.broker_accounts()
    devices = [DeviceAccount(a["site"], a["device"]) for a in accounts]
    hashes = {a["username"]: a["password_hash"] for a in accounts}
    return devices, hashes


@app.command("ca")
def broker_ca(
    out: Annotated[Path, typer.Option(metavar="DIR", help="Directory for the PEM files.")],
    host: Annotated[
        list[str],
        typer.Option(metavar="NAME", help="Host name or IP gates use to reach the broker; repeat."),
    ],
    rotate: Annotated[
        bool,
        typer.Option(
            help="Make a new CA and keep the current one trusted in ca.crt (old + new) while "
            "gates move over."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option(help="Replace an existing CA outright (gates must all be re-issued).")
    ] = False,
) -> None:
    """Create the deployment's CA and the broker's TLS server certificate.

    Writes ca.crt, ca.key, server.crt and server.key into DIR. Keep ca.key off the broker host:
    it signs every certificate gates will trust.

    Rotation (--rotate): ca.crt then holds the new CA and the current one, and server.crt is
    signed by the new CA. Give every gate the new ca.crt first (gatectl device provision, or
    copy it), then install the new server certificate on the broker (gatectl broker render
    --certs DIR). The next rotation drops the old CA from ca.crt.
    """
    out.mkdir(parents=True, exist_ok=True)
    exists = (out / "ca.key").exists()
    if exists and not (rotate or force):
        console.print(
            f"{out / 'ca.key'} exists; pass --rotate to rotate the CA (the old one stays "
            "trusted meanwhile) or --force to replace it"
        )
        raise typer.Exit(1)
    if rotate and not exists:
        fail(f"nothing to rotate: {out / 'ca.key'} does not exist")
    previous = _current_ca(out / "ca.crt") if rotate else None
    ca = create_ca()
    ca.write(out / "ca.crt", out / "ca.key")
    if previous is not None:
        with (out / "ca.crt").open("ab") as bundle:
            bundle.write(previous.public_bytes(serialization.Encoding.PEM))
    issue_server_cert(ca, host).write(out / "server.crt", out / "server.key")
    what = "CA rotated (ca.crt trusts the old and the new)" if previous else "CA"
    console.print(f"{what} and server certificate for {', '.join(host)} written to {out}")


def _current_ca(path: Path) -> x509.Certificate:
    """The CA in use: the first certificate of ``ca.crt`` (later ones are older CAs)."""
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())[0]
    except (OSError, ValueError) as exc:
        fail(f"cannot read the current CA from {path}: {exc}")


@app.command()
def render(
    out: Annotated[Path, typer.Option(metavar="DIR", help="The broker's directory.")],
    server: ServerUrl,
    token: Token,
    server_ca: ServerCa = None,
    certs: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            file_okay=False,
            metavar="DIR",
            help="Copy ca.crt, server.crt and server.key from here (`gatectl broker ca --out`) "
            "into DIR/certs; ca.key stays behind.",
        ),
    ] = None,
    tls_port: Annotated[int, typer.Option(min=1, max=65535, help="Gates' TLS port.")] = 8883,
    plain_port: Annotated[
        int, typer.Option(min=1, max=65535, help="The server's plain port on 127.0.0.1.")
    ] = 1883,
    bind: Annotated[
        str, typer.Option(metavar="ADDRESS", help="Address of the TLS listener.")
    ] = "0.0.0.0",
    run_as: Annotated[
        str | None,
        typer.Option(metavar="USER", help="User Mosquitto runs as (default: this user)."),
    ] = None,
    service_password: Annotated[
        str | None,
        typer.Option(
            envvar="GATECTL_SERVICE_PASSWORD",
            metavar="PASSWORD",
            help="The server's broker password (CAMPUSGATE_SERVER__MQTT__PASSWORD); default: "
            f"keep the current one, or make one into DIR/{SERVICE_PASSWORD_FILE}.",
        ),
    ] = None,
    reload: Annotated[
        bool, typer.Option(help="Reload the running broker (SIGHUP via DIR/mosquitto.pid).")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Write mosquitto.conf, the password file and the ACL into DIR from the server's device
    registry; start the broker with `mosquitto -c DIR/mosquitto.conf`."""
    api = server_api(server, token, server_ca)
    layout = MosquittoLayout(
        data_dir=out, plain_port=plain_port, tls_port=tls_port, tls_bind=bind, run_as=run_as or ""
    )
    layout.certs_dir.mkdir(parents=True, exist_ok=True)
    if certs is not None:
        _copy_certs(certs, layout.certs_dir)
    missing = [name for name in CERT_FILES if not (layout.certs_dir / name).is_file()]
    if missing:
        fail(
            f"{layout.certs_dir} lacks {', '.join(missing)}: pass --certs DIR "
            "(made by `gatectl broker ca --out DIR`)"
        )
    try:
        with console.status("reading the device registry"):
            devices, hashes = _registry(api)
    except ApiError as exc:
        fail(str(exc))
    service_hash, made = _service_hash(layout, service_password)
    render_mosquitto(layout, devices, {**hashes, SERVER_USERNAME: service_hash})
    pid = None
    if reload:
        try:
            pid = reload_mosquitto(layout.pid_file)
        except ReloadError as exc:
            fail(f"rendered, but not reloaded: {exc}")
    result = {
        "conf": str(layout.conf_file),
        "gates": len(devices),
        "service_password_file": str(made) if made else None,
        "reloaded_pid": pid,
    }
    if as_json:
        print(json.dumps(result, indent=2))
        return
    console.print(f"{layout.conf_file} rendered for {len(devices)} gate(s)")
    if made:
        console.print(
            f"the server's broker password is in {made}: set CAMPUSGATE_SERVER__MQTT__PASSWORD "
            "to it"
        )
    if pid is None:
        console.print(f"start the broker: mosquitto -c {layout.conf_file}")


def _copy_certs(source: Path, target: Path) -> None:
    for name in CERT_FILES:
        if not (source / name).is_file():
            fail(f"{source} lacks {name}")
        shutil.copyfile(source / name, target / name)
    (target / "server.key").chmod(0o600)


def _service_hash(layout: MosquittoLayout, password: str | None) -> tuple[str, Path | None]:
    """The server account's hash: of ``password``, else the current one, else of a new
    password written to :data:`SERVICE_PASSWORD_FILE` (returned as the second value)."""
    if password:
        return hash_password(password), None
    try:
        current = read_password_file(layout.password_file).get(SERVER_USERNAME)
    except FileNotFoundError:
        current = None
    if current:
        return current, None
    made = new_password()
    path = layout.data_dir / SERVICE_PASSWORD_FILE
    path.touch(mode=0o600)
    path.write_text(made + "\n")
    return hash_password(made), path


@app.command()
def sync(
    broker_dir: BrokerDir,
    server: ServerUrl,
    token: Token,
    server_ca: ServerCa = None,
    reload: Annotated[bool, typer.Option(help="Reload the broker afterwards (SIGHUP).")] = True,
    broker_password: ServicePassword = None,
    as_json: AsJson = False,
) -> None:
    """Bring the broker's password file and ACL up to date with the registry and reload it
    (after gates were added, provisioned, claimed or revoked elsewhere). Gates that lost their
    account are disconnected by the reload, and their retained status is deleted, so `gatectl
    gate status` no longer shows them online."""
    api = server_api(server, token, server_ca)
    check_broker_dir(broker_dir)
    service = service_target(broker_dir, broker_password) if reload else None
    done = sync_or_fail(api, broker_dir, reload=reload, service=service)
    if as_json:
        print(json.dumps(done, indent=2))
        return
    reloaded = f"; broker reloaded (pid {done['reloaded_pid']})" if reload else ""
    console.print(f"{done['gates']} gate account(s) written to {broker_dir}{reloaded}")
    if done.get("cleared_statuses"):
        console.print(f"status deleted for {', '.join(done['cleared_statuses'])}")
