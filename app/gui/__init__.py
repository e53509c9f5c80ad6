"""Hearth's desktop and kiosk window (PySide6).

This package is the only place in Hearth that imports Qt. It consumes the
assistant pipeline's events (`app.events`) through one bridge object and never
runs recognition, inference or synthesis on the GUI thread.
"""
