"""The self-trigger guard: Hearth's own reply saying the wake word does not wake it."""

from __future__ import annotations

from speech.wake import SelfTriggerGuard, mentions, normalize_phrase


def test_mentions_ignores_case_punctuation_and_ok_spelling() -> None:
    assert mentions("You can say: OK, Nabu! to wake me.", "okay nabu")
    assert not mentions("Okay. Na but then...", "okay nabu")
    assert not mentions("Alexandria is in Egypt.", "alexa")
    assert normalize_phrase("  Hey   JARVIS? ") == "hey jarvis"


def test_guard_holds_while_the_reply_says_the_phrase_and_for_the_echo_tail() -> None:
    now = [100.0]
    guard = SelfTriggerGuard("okay nabu", echo_tail_seconds=1.0, clock=lambda: now[0])
    guard.reply("The weather is fine.")
    assert guard.allows()
    guard.reply("The weather is fine. Just say okay nabu")
    assert not guard.allows()
    now[0] += 5.0
    assert not guard.allows()  # still speaking
    guard.silent()
    now[0] += 0.5
    assert not guard.allows()  # the room's echo
    now[0] += 0.6
    assert guard.allows()
