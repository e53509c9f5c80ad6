"""Hearth's ears and mouth: audio chunks, microphone and speaker, VAD, recognizers,
wake word and synthesizers.

A headless library: it never imports `app`, `engine` or Qt. Audio travels between
modules as `speech.audio.AudioChunk`, never as bare bytes.
"""
