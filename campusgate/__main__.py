"""``python -m campusgate``: the same as the ``campusgate`` command (``up`` starts its parts so)."""

from campusgate.cli import app

app(prog_name="campusgate")
