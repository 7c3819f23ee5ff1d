"""The message contract between gates and the server: topics, payload schemas, broker configs.

Imports nothing of campusgate's own, so that ``edge`` and ``server`` can both depend on it.
"""
