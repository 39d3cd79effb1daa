"""The daemon: builds the pipeline, owns the one TaskGroup, turns signals into reload and stop.

::

    RecursiveWatcher.batches() ──pump──▶ rules.match ──▶ Dispatcher.submit ──▶ actions

Start-up: watch every root (a missing root is a warning: it is watched for), then
``READY=1``. SIGHUP: ``RELOADING=1``, validate the new rules completely, then swap them and
the roots; an invalid file keeps the old rules, and either way ``READY=1`` follows.
SIGTERM/SIGINT: the phased stop of :meth:`Daemon._stop`; a second one exits at once.
Signal handlers only record the signal; the control loop decides (trio's signal receiver).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
import traceback
from collections.abc import Callable

import aiohttp

from .actions.command import install_child_watcher
from .actions.spawn import cloexec_inherited_fds
from .actions.transport import kill_running
from .actions.webhook import make_session
from .assemble import build_runtimes, dispatch_settings
from .dispatch import Dispatcher, RuleRuntime
from .errors import ConfigError
from .events import Mask
from .message_ids import (
    MESSAGE_ID_READY,
    MESSAGE_ID_RELOAD_FAILED,
    MESSAGE_ID_RELOAD_OK,
    MESSAGE_ID_STOPPING,
)
from .rules import RuleSet, load_ruleset, match, warnings
from .sdnotify import Heartbeat, ready, reloading, status, stopping, watchdog_loop
from .text import counted
from .watch import RecursiveWatcher, Root

__all__ = ["Daemon"]

log = logging.getLogger(__name__)

#: Seconds between STATUS= updates while something changes.
STATUS_INTERVAL = 2.0
#: Exit status after a second stop signal (the stop was not graceful).
FORCED_EXIT = 1
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: The daemon's own long-lived tasks; any other task alive at the end of a stop is reported.
_OWN_TASKS = frozenset({"watchdog", "status", "dispatcher", "pump", "second-signal"})


def _journal(message_id: str) -> dict[str, dict[str, str]]:
    return {"journal": {"MESSAGE_ID": message_id}}


class Daemon:
    """``fswatchd run``: the rules daemon, from validated rules to a clean stop.

    Args:
        config: the rules path (file or directory) that SIGHUP reloads.
        ruleset: the rules already loaded from ``config`` (the caller reports errors in
            them with exit status 3 before anything starts).
    Build it inside the running event loop: its stages bind to it.
        loader: reads ``config`` again on reload; raises ConfigError (a seam for tests).

    ``await run()`` returns after a graceful stop; a failure of the reader or the watcher
    propagates (the service manager's ``Restart=`` takes over), an action's never does.
    """

    def __init__(
        self,
        config: str,
        ruleset: RuleSet,
        *,
        loader: Callable[[str], RuleSet] = load_ruleset,
    ) -> None:
        self.config = config
        self.ruleset = ruleset
        self._loader = loader
        self._runtimes: dict[str, RuleRuntime] = {}
        self._session: aiohttp.ClientSession | None = None
        self._signals: asyncio.Queue[signal.Signals] = asyncio.Queue()
        self._events = 0
        self._last_overflow: str | None = None
        self._stopping = False
        self.dispatcher = Dispatcher(dispatch_settings(ruleset.settings))
        self.watcher = RecursiveWatcher(
            self._roots(ruleset), self._mask(ruleset), should_watch=self._should_watch, rearm=True
        )
        self._pump_beat = Heartbeat("reader", self.watcher.has_input)

    # -- building -----------------------------------------------------------------------

    @staticmethod
    def _roots(ruleset: RuleSet) -> list[Root]:
        return [Root(path, recursive) for path, recursive in ruleset.roots()]

    @staticmethod
    def _mask(ruleset: RuleSet) -> int:
        # A rule on MOVED_FROM needs the paired MOVED_TO (it carries the old path).
        return ruleset.mask | (int(Mask.MOVE) if ruleset.mask & Mask.MOVE else 0)

    def _should_watch(self, path: bytes) -> bool:
        # Reads the current rules, so a reload changes pruning for directories met later.
        return self.ruleset.should_watch(path)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = make_session()
        return self._session

    # -- running ------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until SIGTERM/SIGINT, then stop in phases.

        Raises:
            ConfigError: an action of the initial rules cannot be built (unknown user...).
            WatchError: the watcher failed at start (e.g. ENOSPC on a root).
        """
        install_child_watcher()
        # Children are started without close_fds (posix_spawn): no fd we inherited may leak.
        cloexec_inherited_fds()
        for line in warnings(self.ruleset):
            log.warning("%s", line)
        loop = asyncio.get_running_loop()
        for sig in (*_STOP_SIGNALS, signal.SIGHUP):
            loop.add_signal_handler(sig, self._signals.put_nowait, sig)
        try:
            # Inside the try: a webhook may have opened the HTTP session before a later
            # action is refused, and the finally closes it.
            self._runtimes = build_runtimes(self.ruleset, self._http)
            async with asyncio.TaskGroup() as tg:
                await self._serve(tg)
        finally:
            for sig in (*_STOP_SIGNALS, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            if self._session is not None:
                await self._session.close()
            self.watcher.close()

    async def _serve(self, tg: asyncio.TaskGroup) -> None:
        dispatcher_ready = asyncio.Event()
        dispatcher = tg.create_task(self.dispatcher.run(ready=dispatcher_ready), name="dispatcher")
        await dispatcher_ready.wait()

        async def dispatcher_alive() -> bool:
            # The dispatcher is callback-driven on this loop: it responds while its task
            # lives. A full queue behind long actions is busy, not wedged.
            return not dispatcher.done()

        await self.watcher.start()
        pump = tg.create_task(self._pump(), name="pump")
        background = [
            tg.create_task(watchdog_loop([self._pump_beat, dispatcher_alive]), name="watchdog"),
            tg.create_task(self._status_loop(), name="status"),
        ]
        ready(self._status())
        log.info(
            "ready: %s, %s, %s",
            counted(len(self.ruleset.rules), "rule"),
            counted(len(self.ruleset.roots()), "root"),
            counted(self.watcher.watches_in_use, "watch", "watches"),
            extra=_journal(MESSAGE_ID_READY),
        )
        await self._control()
        await self._stop(pump)
        for task in background:
            task.cancel()

    async def _pump(self) -> None:
        """Match every event against the rules in force and hand matches to the dispatcher."""
        submit = self.dispatcher.submit
        async for batch in self.watcher.batches():
            self._pump_beat.beat()
            ruleset, runtimes = self.ruleset, self._runtimes
            self._events += len(batch)
            for event in batch:
                if event.mask & Mask.Q_OVERFLOW:
                    # The watcher logs the overflow and its repair; STATUS shows when.
                    self._last_overflow = time.strftime("%H:%M:%S")
                    continue
                for found in match(ruleset, event):
                    submit(runtimes[found.rule.name], found)

    async def _control(self) -> None:
        """Consume signals until a stop signal; SIGHUP reloads in between."""
        while True:
            sig = await self._signals.get()
            if sig in _STOP_SIGNALS:
                log.info("received %s: stopping", sig.name)
                return
            await self.reload()

    # -- reload -------------------------------------------------------------------------

    async def reload(self) -> bool:
        """Validate the rules file completely, then swap rules and roots; never half-apply.

        Returns:
            True if the new rules are in force, False if they were invalid (the old rules
            keep running and the error is logged with its file, line and key).
        """
        reloading()
        try:
            ruleset = self._loader(self.config)
            runtimes = build_runtimes(ruleset, self._http)
        except ConfigError as exc:
            log.error(
                "reload failed, keeping the old rules: %s",
                exc,
                extra=_journal(MESSAGE_ID_RELOAD_FAILED),
            )
            ready(self._status())
            return False
        for line in warnings(ruleset):
            log.warning("%s", line)
        # Rules first, roots second: events from a new root's scan then meet the new rules.
        self.ruleset, self._runtimes = ruleset, runtimes
        self.dispatcher.set_rules(runtimes.values())
        await self.watcher.set_roots(self._roots(ruleset), self._mask(ruleset))
        log.info(
            "reloaded %s: %s",
            self.config,
            counted(len(ruleset.rules), "rule"),
            extra=_journal(MESSAGE_ID_RELOAD_OK),
        )
        ready(self._status())
        return True

    # -- stop ---------------------------------------------------------------------------

    async def _stop(self, pump: asyncio.Task[None]) -> None:
        """The phased stop: intake, drain, terminate, report; each phase logged once."""
        self._stopping = True
        settings = self.ruleset.settings
        stopping()
        log.info("stop 1/4: closing intake", extra=_journal(MESSAGE_ID_STOPPING))
        force = asyncio.get_running_loop().create_task(self._second_signal(), name="second-signal")
        self.watcher.close()
        await pump
        log.info("stop 2/4: waiting up to %g s for running actions", settings.stop_timeout)
        discarded = await self.dispatcher.drain(settings.stop_timeout)
        if discarded:
            log.warning("%d queued actions were not started", discarded)
        running = self.dispatcher.stats.running
        if running:
            log.info("stop 3/4: terminating %d running actions", running)
            async with asyncio.timeout(settings.kill_grace + 10):
                await self.dispatcher.cancel_all()
        else:
            log.info("stop 3/4: no running action to terminate")
        log.info("stop 4/4: done")
        self._log_stragglers()
        force.cancel()

    async def _second_signal(self) -> None:
        while (await self._signals.get()) not in _STOP_SIGNALS:
            pass  # a reload during a stop is moot
        # Not waiting is no reason to leave them running: from a terminal nothing else
        # would stop them (each has a session of its own; under systemd, the cgroup would).
        killed = kill_running()
        log.warning("second stop signal: exiting now; %d running actions killed", killed)
        logging.shutdown()
        os._exit(FORCED_EXIT)

    @staticmethod
    def _log_stragglers() -> None:
        me = asyncio.current_task()
        for task in asyncio.all_tasks():
            if task is me or task.get_name() in _OWN_TASKS:
                continue
            stack = "".join(traceback.format_list(traceback.extract_stack(task.get_stack()[-1])))
            log.warning("task %s still running at stop:\n%s", task.get_name(), stack)

    # -- status -------------------------------------------------------------------------

    def _status(self) -> str:
        stats = self.dispatcher.stats
        overflow = f"; last overflow {self._last_overflow}" if self._last_overflow else ""
        rules = counted(len(self.ruleset.rules), "rule")
        watches = counted(self.watcher.watches_in_use, "watch", "watches")
        return (
            f"{rules}, {watches}; "
            f"{self._events} events; actions {stats.running} running, {stats.queued} queued, "
            f"{stats.failed} failed{overflow}"
        )

    async def _status_loop(self) -> None:
        last = ""
        while not self._stopping:
            await asyncio.sleep(STATUS_INTERVAL)
            text = self._status()
            if text != last:
                status(text)
                last = text
