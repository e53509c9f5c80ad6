"""The assistant: the streaming voice pipeline (`pipeline.Assistant`, a facade over its
stages: listen, reply, voice), the turn ledger and its state machine, the event bus,
the history recorder, the supervisor, and beeps.

Nothing here imports Qt; the GUI, the headless runner and file mode all drive the
same `Assistant` and consume the same events from `app.events`.
"""
