"""The assistant: the streaming voice pipeline (`Assistant`), its state machine and beeps.

Nothing here imports Qt; the GUI, the headless runner and file mode all drive the
same `Assistant` and consume the same events from `app.events`.
"""
