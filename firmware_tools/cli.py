"""``gatectl``: provisioning, credentials and certificates, diagnostics for gates."""

from __future__ import annotations

import typer

from firmware_tools.backup_cli import backup, restore
from firmware_tools.broker_cli import app as broker_app
from firmware_tools.camera_cli import app as camera_app
from firmware_tools.cccd_cli import app as cccd_app
from firmware_tools.device_cli import app as device_app
from firmware_tools.doctor import doctor
from firmware_tools.enroll_cli import enroll
from firmware_tools.models_cli import app as models_app
from firmware_tools.reader_cli import app as reader_app
from firmware_tools.status_cli import app as gate_app

app = typer.Typer(
    help="gatectl: bring campusgate gates online and keep them healthy.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(broker_app, name="broker")
app.add_typer(device_app, name="device")
app.add_typer(models_app, name="models")
app.add_typer(cccd_app, name="cccd")
app.add_typer(reader_app, name="reader")
app.add_typer(camera_app, name="camera")
app.add_typer(gate_app, name="gate")
app.command("doctor")(doctor)
app.command("enroll")(enroll)
app.command("backup")(backup)
app.command("restore")(restore)
