"""OSC: Max, Pd and TouchOSC play the map, and hear back where the cursor is (python-osc).

In (a UDP server, 127.0.0.1 by default so nothing outside this computer can play it):

=============================  =============================================================
``/latent/xy u v``             move the position; u, v in 0..1 across the map (clamped)
``/latent/play [on]``          start the scrub voice; ``/latent/play 0`` stops it (a push
                               button sends 1 on press and 0 on release: hold to play)
``/latent/stop [on]``          stop the scrub voice (``/latent/stop 0``, a button's release,
                               does nothing)
``/latent/note pitch vel``     note-on at the current position (MIDI numbers 0..127, floats
                               rounded); velocity 0 is a note-off
=============================  =============================================================

Out (to ``send_host:send_port``, 127.0.0.1:9001 by default), when the app calls
:meth:`OscLink.send_cursor` / :meth:`OscLink.send_selected` on a change: ``/latent/cursor u v``
(0..1, same frame as ``/latent/xy``) and ``/latent/selected name``. Sends are coalesced to at most
``max_send_hz`` a second on a sender thread, always ending with the latest value.

A malformed message (wrong count or types of arguments, NaN, unknown ``/latent/...`` address,
a datagram that is not OSC) is ignored and counted in ``ignored``; nothing raises in the server
thread. No Qt here.
"""

from __future__ import annotations

import math
import sys
import threading
from dataclasses import dataclass
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from explorer.play import PlayControls, to_map
from models.errors import ConfigError

PREFIX = "/latent"


@dataclass(frozen=True, kw_only=True)
class OscConfig:
    """Where OSC listens and sends, saved with the app's settings (``models.config.config_to_dict``).

    ``listen_port`` 0 picks a free port (:attr:`OscLink.port` tells which); ``send_port`` 0 sends
    nothing. Listening on another host than 127.0.0.1 (``"0.0.0.0"``: a phone with TouchOSC on
    the network) lets anyone on that network play the map: the user's choice, never the default.
    """

    listen_host: str = "127.0.0.1"
    listen_port: int = 9000
    send_host: str = "127.0.0.1"
    send_port: int = 9001
    #: at most this many cursor / selection messages a second (the GUI moves at 60 events a second)
    max_send_hz: float = 30.0

    def __post_init__(self) -> None:
        for name in ("listen_port", "send_port"):
            port = getattr(self, name)
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                raise ConfigError(f"OscConfig.{name} must be a port number 0..65535, got {port!r}")
        for name in ("listen_host", "send_host"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"OscConfig.{name} must be a host name or address")
        if not (isinstance(self.max_send_hz, int | float) and math.isfinite(self.max_send_hz)
                and self.max_send_hz > 0):
            raise ConfigError(f"OscConfig.max_send_hz must be a positive number, got {self.max_send_hz!r}")


def _number(value: Any) -> float | None:
    """An OSC int or float argument as a finite float, else None (strings, blobs, T/F, NaN, inf)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _midi_number(value: Any) -> int | None:
    number = _number(value)
    if number is None:
        return None
    n = round(number)
    return n if 0 <= n <= 127 else None


class _Server(BlockingOSCUDPServer):
    """One thread, messages in the order they arrive (a threading server could reorder a drag)."""

    def __init__(self, address: tuple[str, int], dispatcher: Dispatcher, link: OscLink) -> None:
        super().__init__(address, dispatcher)
        self._link = link

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a datagram python-osc failed on in a way its ParseError does not cover (or a control that
        # raised): count it and keep serving, rather than print a traceback per packet a stranger sends
        exc = sys.exc_info()[1]
        self._link._ignore(f"a message failed: {exc!r}")


class OscLink:
    """The OSC server and sender of one play engine.

    Parameters
    ----------
    engine : PlayControls
        The play engine; ``/latent/xy`` goes through ``engine.field.normalised``.
    config : OscConfig
        Hosts and ports.

    Raises
    ------
    OSError
        When the listening port cannot be bound (in use, bad host): the app reports it and runs
        without OSC.
    """

    def __init__(self, engine: PlayControls, *, config: OscConfig | None = None) -> None:
        self._engine = engine
        self.config = config if config is not None else OscConfig()
        #: messages ignored; ``last_ignored`` says why the latest one was
        self.ignored = 0
        self.last_ignored: str | None = None
        #: messages acted on
        self.received = 0
        #: messages sent out, and send errors (nobody listening: ICMP "port unreachable")
        self.sent = 0
        self.send_errors = 0

        dispatcher = Dispatcher(strict_timing=False)  # a bundle stamped in the future must not stall us
        dispatcher.map(f"{PREFIX}/xy", self._on_xy)
        dispatcher.map(f"{PREFIX}/play", self._on_play)
        dispatcher.map(f"{PREFIX}/stop", self._on_stop)
        dispatcher.map(f"{PREFIX}/note", self._on_note)
        dispatcher.set_default_handler(self._on_unknown)
        # the client first: a send host that does not resolve must not leave the port bound
        self._client = (SimpleUDPClient(self.config.send_host, self.config.send_port)
                        if self.config.send_port else None)
        try:
            self._server = _Server((self.config.listen_host, self.config.listen_port), dispatcher, self)
        except OSError:
            if self._client is not None:
                self._client.close()
            raise
        self._server_thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                               name="osc-server", daemon=True)
        self._pending: dict[str, list[Any]] = {}
        self._pending_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._sender_thread = threading.Thread(target=self._send_loop, name="osc-sender", daemon=True)
        self._closed = False
        self._server_thread.start()
        self._sender_thread.start()

    def set_engine(self, engine: PlayControls) -> None:
        """Drive another engine (the app rebuilt it for another model); the port stays open.

        One reference store: atomic under the GIL, so the port's thread sees the old or the new one.
        """
        self._engine = engine

    @property
    def port(self) -> int:
        """The port the server listens on (the free one picked when ``listen_port`` is 0)."""
        return int(self._server.server_address[1])

    # -- in (server thread) -----------------------------------------------------------------
    def _ignore(self, why: str) -> None:
        self.ignored += 1
        self.last_ignored = why

    def _on_unknown(self, address: str, *args: Any) -> None:
        self._ignore(f"unknown address {address}")

    def _on_xy(self, address: str, *args: Any) -> None:
        if len(args) != 2:
            return self._ignore(f"{address} takes 2 numbers, got {len(args)} argument(s)")
        u, v = _number(args[0]), _number(args[1])
        if u is None or v is None:
            return self._ignore(f"{address} takes 2 finite numbers, got {args!r}")
        field = self._engine.field
        if field is None:
            return self._ignore(f"{address}: no map yet")
        self._engine.set_xy(*to_map(field, u, v))
        self.received += 1

    def _switch(self, address: str, args: tuple[Any, ...]) -> bool | None:
        """No argument or a non-zero one: True; zero: False; anything else: None (ignored)."""
        if not args:
            return True
        on = _number(args[0]) if len(args) == 1 else None
        if on is None:
            self._ignore(f"{address} takes no argument or 1 number, got {args!r}")
            return None
        return on != 0.0

    def _on_play(self, address: str, *args: Any) -> None:
        on = self._switch(address, args)
        if on is None:
            return
        self._engine.start() if on else self._engine.stop()
        self.received += 1

    def _on_stop(self, address: str, *args: Any) -> None:
        on = self._switch(address, args)
        if on:
            self._engine.stop()
            self.received += 1

    def _on_note(self, address: str, *args: Any) -> None:
        if len(args) != 2:
            return self._ignore(f"{address} takes pitch and velocity, got {len(args)} argument(s)")
        pitch, velocity = _midi_number(args[0]), _midi_number(args[1])
        if pitch is None or velocity is None:
            return self._ignore(f"{address} takes pitch and velocity in 0..127, got {args!r}")
        if velocity == 0:
            self._engine.note_off(pitch)
        else:
            self._engine.note_on(pitch, velocity)
        self.received += 1

    # -- out (the app calls these on a change; the sender thread sends) ---------------------
    def send_cursor(self, x: float, y: float) -> None:
        """Announce the play cursor, given in map coordinates (sent as 0..1 like ``/latent/xy``)."""
        field = self._engine.field
        if field is None or not (math.isfinite(x) and math.isfinite(y)):
            return
        u, v = field.unit(x, y)
        self._queue(f"{PREFIX}/cursor", [u, v])

    def send_selected(self, name: str) -> None:
        """Announce the selected sound's name."""
        self._queue(f"{PREFIX}/selected", [str(name)])

    def _queue(self, address: str, args: list[Any]) -> None:
        if self._client is None:
            return
        with self._pending_lock:
            self._pending[address] = args  # only the latest value of each address is worth sending
        self._wake.set()

    def _send_loop(self) -> None:
        interval = 1.0 / self.config.max_send_hz
        while True:
            self._wake.wait()
            self._wake.clear()
            self._flush()
            if self._closing.is_set():
                return
            # the rate limit: whatever arrives meanwhile is coalesced into the next flush
            if self._closing.wait(interval):
                self._flush()
                return

    def _flush(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for address, args in pending.items():
            try:
                self._client.send_message(address, args)
                self.sent += 1
            except OSError:  # nobody listening yet (ECONNREFUSED after an ICMP), network down
                self.send_errors += 1

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Send what is pending, stop both threads and free the port; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._wake.set()
        self._sender_thread.join(timeout=5)
        self._server.shutdown()
        self._server.server_close()
        self._server_thread.join(timeout=5)
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> OscLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
