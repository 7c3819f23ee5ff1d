"""``gatectl``, the technicians' tool for bringing gates online and keeping them healthy."""
