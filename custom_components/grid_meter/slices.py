"""Update many entities without holding the event loop: a few milliseconds at a time.

A bus of 30 meters has close to a thousand entities, and a campus has a dozen buses. Writing
all of a bus's states in one callback holds Home Assistant's event loop for hundreds of
milliseconds, during which other buses cannot send their next request and the UI stalls.
:class:`SlicedUpdates` calls the callbacks of a batch for at most :data:`SLICE_SECONDS`,
then yields to the loop and carries on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Final

from homeassistant.core import HomeAssistant, callback

from .const import LOGGER

#: How long one slice may hold the event loop.
SLICE_SECONDS: Final = 0.004


class SlicedUpdates[K, V]:
    """Runs batches of callbacks in slices; a new batch replaces an unfinished one.

    Every batch covers all callbacks and each reads the newest data when called, so
    the callbacks an interrupted batch had not reached yet are served by its successor.
    A callback that raises is logged and the batch goes on.
    """

    def __init__(self, hass: HomeAssistant, name: str, call: Callable[[V], None]) -> None:
        """Prepare batches that apply ``call`` to each value."""
        self._hass = hass
        self._name = name
        self._call = call
        self._task: asyncio.Task[None] | None = None

    @callback
    def run(self, callbacks: Mapping[K, V]) -> None:
        """Call every value of ``callbacks`` (read live: removed keys are skipped)."""
        self.cancel()
        task = self._hass.async_create_task(
            self._run(callbacks, list(callbacks)), self._name, eager_start=True
        )
        self._task = None if task.done() else task

    @callback
    def cancel(self) -> None:
        """Stop the batch that is running, if any."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self, callbacks: Mapping[K, V], keys: list[K]) -> None:
        loop = self._hass.loop
        ends = loop.time() + SLICE_SECONDS
        for key in keys:
            if (value := callbacks.get(key)) is not None:
                try:
                    self._call(value)
                except Exception:  # one failing entity must not stop the others' updates
                    LOGGER.exception("%s: an update failed (%r)", self._name, value)
            if loop.time() >= ends:
                await asyncio.sleep(0)
                ends = loop.time() + SLICE_SECONDS
