"""A push-to-talk button and a status LED on Raspberry Pi GPIO pins (gpiozero).

The button (BCM pin `gpio.button_pin`, internal pull-up when `gpio.pull_up`, so it
connects the pin to ground) drives push-to-talk: pressed starts listening (or barges
in), released ends the question. The optional LED (`gpio.led_pin`) shows the state:
off when idle, on while listening, blinking fast while thinking, slowly while
speaking, very fast on an error. gpiozero picks the pin library; tests set
`Device.pin_factory = MockFactory()`.
"""

from __future__ import annotations

import logging
from typing import Any

from app.assistant.pipeline import Assistant
from app.config import GpioSettings
from app.errors import HearthError
from app.events import Event, State, StateChanged

log = logging.getLogger(__name__)

BOUNCE_SECONDS = 0.03
"""Contact bounce of a cheap push button is a few ms; edges closer than this are one."""

# state -> (seconds on, seconds off) of the LED blink; None = steady on, () = off
_LED_PATTERNS: dict[State, tuple[float, float] | tuple[()] | None] = {
    State.IDLE: (),
    State.LISTENING: None,
    State.THINKING: (0.15, 0.15),
    State.SPEAKING: (0.5, 0.5),
    State.ERROR: (0.05, 0.05),
}


class GpioControls:
    """Wires a gpiozero Button (and LED) to an `Assistant`. Call `close()` to release pins."""

    def __init__(self, gpio: GpioSettings, assistant: Assistant,
                 pin_factory: Any = None) -> None:
        try:
            from gpiozero import LED, Button
            from gpiozero.exc import GPIOZeroError
        except ImportError as exc:
            raise HearthError("GPIO needs gpiozero: pip install 'hearth[gpio]'") from exc
        self.assistant = assistant
        self.button: Any = None
        self.led: Any = None
        try:
            if gpio.button_pin >= 0:
                self.button = Button(gpio.button_pin, pull_up=gpio.pull_up,
                                     bounce_time=BOUNCE_SECONDS, pin_factory=pin_factory)
                self.button.when_pressed = self._pressed
                self.button.when_released = self._released
                log.info("push-to-talk button on GPIO%d (%s)", gpio.button_pin,
                         "to ground, pull-up" if gpio.pull_up else "to 3.3 V, pull-down")
            if gpio.led_pin >= 0:
                self.led = LED(gpio.led_pin, pin_factory=pin_factory)
                assistant.subscribe(self._on_event)
                log.info("status LED on GPIO%d", gpio.led_pin)
        except (GPIOZeroError, OSError, RuntimeError) as exc:
            self.close()
            raise HearthError(f"cannot use the GPIO pins in [gpio]: {exc}") from exc

    def _pressed(self) -> None:
        self.assistant.push_to_talk_pressed()

    def _released(self) -> None:
        self.assistant.push_to_talk_released()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, StateChanged) and self.led is not None:
            self.show(event.state)

    def show(self, state: State) -> None:
        """Set the LED pattern for `state`."""
        pattern = _LED_PATTERNS[state]
        if pattern is None:
            self.led.on()
        elif pattern == ():
            self.led.off()
        else:
            on, off = pattern  # type: ignore[misc]
            self.led.blink(on_time=on, off_time=off, background=True)

    def close(self) -> None:
        for device in (self.button, self.led):
            if device is not None:
                device.close()
        self.button = self.led = None
