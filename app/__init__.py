"""Hearth, the application: configuration, model store, assistant pipeline, CLI,
headless runner and (in `app.gui`, the only place that imports Qt) the desktop GUI."""

__version__ = "0.1.0"
