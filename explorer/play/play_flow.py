"""Playing the map from the window: scrub, MIDI, OSC, live input and takes, wired to one engine.

The window installs one :class:`PlayFlow`. It owns the play engine of the current model
(:class:`models.realtime.engine.PlayEngine`, built when first needed and dropped when the model
changes), the producer that feeds the sound card (attached to the window's audio output beside the
click sounds), and the controllers that drive it: the :class:`ScrubTool` on the map, a MIDI input,
an OSC link, a live input. It computes no sound: the engine does, on the producer's thread. A
30 Hz timer moves the play cursor, sends it out over OSC and shows underruns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QActionGroup
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QLabel

from explorer.core.own_data import DESCRIPTORS
from explorer.play.live_run import LiveRun
from explorer.play.midi_in import MidiBindings, MidiInput
from explorer.play.osc_link import OscConfig, OscLink
from explorer.play.scrub_tool import ScrubTool
from explorer.sound.audio_out import CALLBACK_BLOCK, RecordingSink
from models.config import config_from_dict, config_to_dict
from models.errors import LatentExplorerError
from models.realtime.engine import EngineConfig, PlayEngine, write_take
from models.realtime.producer import Producer
from models.realtime.live_input import FileInput, LiveCursor, LiveEncoder, SoundCardInput
from models.realtime.position import PositionField, pitch_labels
from models.realtime.synth import make_synth

#: OSC listening hosts offered: only this computer (the default), or every network interface
LOCAL_ONLY, ANY_HOST = "127.0.0.1", "0.0.0.0"
#: how often the cursor, the OSC feedback and the underrun count are refreshed
UI_HZ = 30


class PlayFlow(QObject):
    """The window's "Play" menu and toolbar toggle, and the engine they drive.

    ``window`` is the main window: its controller, map view, audio output, notifier, runner,
    settings, path panel and status bar.
    """

    #: MIDI learn bound a CC (emitted on the MIDI thread, received on the GUI thread)
    _learned = Signal(object)

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.w = window
        self._learned.connect(self._on_midi_learned)
        self.engine: PlayEngine | None = None
        self.producer: Producer | None = None
        self._engine_key: str | None = None
        self.midi: MidiInput | None = None
        self.osc: OscLink | None = None
        self.live: LiveRun | None = None
        #: the cursor's path [shape=(n, 2)] over the last live input, one position per code
        self.live_path = np.zeros((0, 2))
        self.last_gesture: np.ndarray | None = None
        self._last_sent: tuple[float, float] | None = None
        self.scrub = ScrubTool(window.map_view, self)
        self.scrub.scrub_started.connect(self._on_scrub_started)
        self.scrub.scrub_moved.connect(self._on_scrub_moved)
        self.scrub.scrub_ended.connect(self._on_scrub_ended)
        self._build_actions()
        self.underrun_label = QLabel("")
        window.statusBar().addPermanentWidget(self.underrun_label)
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / UI_HZ))
        self._timer.timeout.connect(self._on_timer_tick)
        c = window.controller
        c.model_changed.connect(self._on_controller_model_changed)
        c.dataset_changed.connect(self._on_controller_model_changed)
        c.embedding_changed.connect(self._on_controller_map_changed)
        c.hidden_classes_changed.connect(lambda: self._on_controller_map_changed(True))
        c.gains_changed.connect(self._on_controller_gains_changed)
        window.path_panel.mode_btn.toggled.connect(self._on_path_mode_toggled)
        # a drag whose release never arrives (another window took the focus) must not hold the sound
        QApplication.instance().applicationStateChanged.connect(self._on_application_state_changed)

    @property
    def live_running(self) -> bool:
        return self.live is not None and self.live.running

    # --- construction ----------------------------------------------------------------------------
    def _build_actions(self) -> None:
        w = self.w
        self.act_scrub = w.add_action("Scrub the map", lambda: None, "S")
        self.act_scrub.setCheckable(True)
        self.act_scrub.setToolTip("Scrub (S): drag over the map and the sound follows the cursor")
        self.act_scrub.toggled.connect(self.set_scrub)
        self.act_keep = w.add_action("Keep gesture as morph path", self.keep_gesture, "Ctrl+G")
        self.act_take = w.add_action("Record take", lambda: None, "Ctrl+R")
        self.act_take.setCheckable(True)
        self.act_take.toggled.connect(self._on_take_toggled)
        self.act_midi_virtual = w.add_action("MIDI: open virtual input port", self.open_midi_virtual)
        self.act_midi_learn_x = w.add_action("MIDI learn: x", lambda: self.midi_learn("x"))
        self.act_midi_learn_y = w.add_action("MIDI learn: y", lambda: self.midi_learn("y"))
        self.act_osc = w.add_action("OSC in/out", lambda: None)
        self.act_osc.setCheckable(True)
        self.act_osc.toggled.connect(self.set_osc)
        self.act_osc_ports = w.add_action("OSC ports…", self._on_osc_ports_triggered)
        self.act_live_file = w.add_action("Live input from a file…", self._on_live_file_triggered)
        self.act_live_card = w.add_action("Live input from the sound card", self.start_live_card)
        self.act_live_stop = w.add_action("Stop live input", self.stop_live)
        self.act_resynth = w.add_action("Resynthesise live input", lambda: None)
        self.act_resynth.setCheckable(True)
        w.toolbar.addSeparator()
        w.toolbar.addAction(self.act_scrub)
        m = w.menuBar().addMenu("P&lay")
        m.addAction(self.act_scrub)
        m.addAction(self.act_keep)
        m.addAction(self.act_take)
        m.addSeparator()
        self.midi_menu = m.addMenu("MIDI input")
        self.midi_menu.aboutToShow.connect(self._fill_midi_menu)
        m.addAction(self.act_midi_learn_x)
        m.addAction(self.act_midi_learn_y)
        m.addAction(self.act_osc)
        m.addAction(self.act_osc_ports)
        m.addSeparator()
        for a in (self.act_live_file, self.act_live_card, self.act_resynth, self.act_live_stop):
            m.addAction(a)

    def _fill_midi_menu(self) -> None:
        self.midi_menu.clear()
        names, why = self._midi().input_names()
        group = QActionGroup(self.midi_menu)
        for name in names:
            a = self.midi_menu.addAction(name)
            a.setCheckable(True)
            a.setChecked(name == self._midi().port_name)
            a.triggered.connect(lambda _=False, n=name: self.open_midi(n))
            group.addAction(a)
        if not names:
            a = self.midi_menu.addAction("No MIDI input ports" + (" (MIDI is unavailable here)" if why else ""))
            a.setEnabled(False)
            if why:  # the full reason (a driver's message can be long) as the tooltip and in the status bar
                a.setToolTip(why)
                self.midi_menu.setToolTipsVisible(True)
                self.w.notifier.status_posted.emit(why)
        self.midi_menu.addSeparator()
        self.midi_menu.addAction(self.act_midi_virtual)

    # --- the engine ------------------------------------------------------------------------------
    def ensure_engine(self) -> PlayEngine | None:
        """The engine of the current model on the current map (built now if need be), or None with a message."""
        c = self.w.controller
        lm, enc, emb = c.current, c.encoding, c.embedding
        if lm is None or enc is None or emb is None or c.current_key == DESCRIPTORS:
            self.w.notifier.status_posted.emit("Playing the map needs a model's map: open a checkpoint first")
            return None
        if self.engine is not None and self._engine_key == c.current_key:
            return self.engine
        self.close_engine()
        try:
            model, rep, shape, layout, gains = lm.model, lm.representation, enc.latent_shape, enc.layout, c.gains_vector()
            engine = PlayEngine(lambda: make_synth(model, rep, latent_shape=shape, layout=layout, gains=gains),
                                sr=rep.sample_rate)
            engine.set_field(self._field())
        except LatentExplorerError as exc:
            self.w.notifier.error_occurred.emit(f"This model cannot be played live: {exc}")
            return None
        self.engine, self._engine_key = engine, c.current_key
        self.producer = Producer(engine, device_sr=self.w.audio.sr, card_block=CALLBACK_BLOCK)
        self.w.audio.set_stream_source(self.producer)
        if isinstance(self.w.audio, RecordingSink):  # no sound card: a recording sink is driven by tests only
            self.w.notifier.status_posted.emit("Sound is off (no audio output device): the map plays silently")
        else:
            self.producer.start()
        self._link(engine)
        self._timer.start()
        return engine

    def _link(self, engine: Any) -> None:
        """Point the open MIDI input and OSC link at ``engine`` (an idle stand-in between engines)."""
        for link in (self.midi, self.osc):
            if link is not None:
                link.set_engine(engine)

    def _wanted(self) -> bool:
        """Whether something is set to play (scrub on, a MIDI port or OSC open, a take running)."""
        midi_open = self.midi is not None and self.midi.port_name is not None
        return self.act_scrub.isChecked() or self.osc is not None or midi_open

    def _field(self) -> PositionField:
        c = self.w.controller
        codes, clips, _ = c.map_codes()
        return PositionField(c.points, codes, visible=c.visible_mask(), pitches=pitch_labels(c.dataset, clips))

    def close_engine(self, *, offer_take: bool = True) -> None:
        """Silence and drop the engine (another model, the window closing); controllers stay open,
        pointed at an idle stand-in until the next engine. A take running is collected first and
        offered for saving once the engine is gone (a dialog's event loop must not feed it)."""
        if self.engine is None:
            return
        self.stop_live()
        take = None
        if self.act_take.isChecked():
            take = self.engine.stop_take()
            self.act_take.blockSignals(True)
            self.act_take.setChecked(False)
            self.act_take.blockSignals(False)
        self.w.audio.set_stream_source(None)
        if self.producer is not None:
            self.producer.close()
        self.engine, self.producer, self._engine_key = None, None, None
        self._link(_Idle())
        self._timer.stop()
        self.scrub.show_cursor(None)
        if take is not None and offer_take:
            self._offer_take(take)

    def _on_controller_model_changed(self) -> None:
        self.close_engine()  # the next final map builds the new model's engine if something plays

    def _on_controller_gains_changed(self) -> None:
        if self.engine is not None:  # the synths are made with the gains: a new engine plays the new dials
            self.close_engine()
            self.ensure_engine()

    def _on_controller_map_changed(self, final: bool) -> None:
        c = self.w.controller
        if not final or c.embedding is None:
            return
        if self.engine is None:
            if self._wanted():
                self.ensure_engine()
            return
        try:
            self.engine.set_field(self._field())
        except LatentExplorerError as exc:  # every point gone: the voices go quiet
            self.engine.set_field(None)
            self.w.notifier.status_posted.emit(f"Nothing to play: {exc}")

    def _on_application_state_changed(self, state: Qt.ApplicationState) -> None:
        if state != Qt.ApplicationState.ApplicationActive and self.scrub.dragging:
            self.scrub.cancel()

    # --- scrub -----------------------------------------------------------------------------------
    def set_scrub(self, on: bool) -> None:
        if on and self.ensure_engine() is None:
            self.act_scrub.setChecked(False)
            return
        if on and self.w.path_panel.mode_btn.isChecked():
            self.w.path_panel.mode_btn.setChecked(False)  # one tool owns the mouse
        self.scrub.set_active(on)
        if not on and self.engine is not None:
            self.engine.stop()
        if on:
            self.w.notifier.status_posted.emit("Scrub: drag over the map to play it; S or the toolbar button ends")

    def _on_path_mode_toggled(self, on: bool) -> None:
        if on and self.act_scrub.isChecked():
            self.act_scrub.setChecked(False)

    def _on_scrub_started(self, x: float, y: float) -> None:
        if self.engine is not None:
            self.engine.set_xy(x, y)
            self.engine.start()
        self.scrub.show_cursor((x, y))

    def _on_scrub_moved(self, x: float, y: float) -> None:
        if self.engine is not None:
            self.engine.set_xy(x, y)
        self.scrub.show_cursor((x, y))

    def _on_scrub_ended(self, gesture: np.ndarray) -> None:
        if self.engine is not None:
            self.engine.stop()
        self.last_gesture = gesture
        if len(gesture) >= 2:
            self.w.notifier.status_posted.emit("Ctrl+G keeps this gesture as a morph path")

    def keep_gesture(self) -> None:
        """The gesture just played becomes a drawn morph path (to hear again, edit and export)."""
        g = self.last_gesture
        if g is None or len(g) < 2:
            self.w.notifier.status_posted.emit("No gesture to keep: scrub over the map first")
            return
        try:
            self.w.path_panel.tool.add_stroke(g)
        except LatentExplorerError as exc:
            self.w.notifier.error_occurred.emit(f"The gesture could not become a path: {exc}")
            return
        self.scrub.show_gesture(None)
        self.w.notifier.status_posted.emit("The gesture is now a morph path (Morph tab)")

    # --- takes -----------------------------------------------------------------------------------
    def _on_take_toggled(self, on: bool) -> None:
        if on:
            if self.ensure_engine() is None:
                self.act_take.setChecked(False)
                return
            self.engine.start_take()
            self.w.notifier.status_posted.emit("Recording a take: Ctrl+R again to stop and save it")
            return
        if self.engine is None:
            return
        self._offer_take(self.engine.stop_take())

    def _offer_take(self, take: Any) -> None:
        if len(take.y) == 0:
            self.w.notifier.status_posted.emit("The take is empty: nothing played while it was recording")
            return
        if take.full:
            self.w.notifier.status_posted.emit(
                f"The take reached its longest ({EngineConfig().take_max_s:.0f} s): what came after was not recorded")
        folder = self.w.settings.value("play/take_dir", str(Path.home()))
        path, _ = QFileDialog.getSaveFileName(self.w, "Save take", str(Path(str(folder)) / "take.wav"), "WAV (*.wav)")
        if not path:
            self.w.notifier.status_posted.emit("Take discarded")
            return
        self.save_take(take, path)

    def save_take(self, take: Any, path: str | Path) -> Path | None:
        try:
            written = write_take(path, take, sample_rate=self.w.path_panel.export_rate())  # the exports' rate
        except LatentExplorerError as exc:
            self.w.notifier.error_occurred.emit(str(exc))
            return None
        self.w.settings.setValue("play/take_dir", str(Path(written).parent))
        self.w.notifier.status_posted.emit(f"Take saved: {written}")
        return written

    # --- MIDI ------------------------------------------------------------------------------------
    def _midi(self) -> MidiInput:
        if self.midi is None:
            self.midi = MidiInput(self.engine or _Idle(), bindings=self._saved_bindings(),
                                  on_learned=self._learned.emit)  # MIDI thread -> a queued signal
        return self.midi

    def _on_midi_learned(self, bindings: MidiBindings) -> None:
        self.w.settings.setValue("play/midi_bindings", json.dumps(config_to_dict(bindings)))
        self.w.notifier.status_posted.emit(f"MIDI learn: x is CC {bindings.x_cc}, y is CC {bindings.y_cc}")

    def _saved_bindings(self) -> MidiBindings:
        """The CC bindings MIDI learn made last time (defaults when none or unreadable)."""
        try:
            return config_from_dict(MidiBindings, json.loads(str(self.w.settings.value("play/midi_bindings", "{}"))))
        except (ValueError, TypeError, LatentExplorerError):
            return MidiBindings()

    def open_midi(self, name: str) -> None:
        if self.ensure_engine() is None:
            return
        why = self._midi().open(name)
        self.w.notifier.status_posted.emit(f"MIDI input: {name}" if why is None else f"MIDI input not opened: {why}")

    def open_midi_virtual(self) -> None:
        if self.ensure_engine() is None:
            return
        why = self._midi().open_virtual()
        self.w.notifier.status_posted.emit(
            "MIDI: virtual input port \"latent-explorer\" is open" if why is None else f"No virtual MIDI port: {why}")

    def midi_learn(self, axis: str) -> None:
        self._midi().learn(axis)
        self.w.notifier.status_posted.emit(f"MIDI learn: move the controller to bind to {axis}")

    # --- OSC -------------------------------------------------------------------------------------
    def osc_config(self) -> OscConfig:
        s = self.w.settings
        d = OscConfig()
        try:
            return OscConfig(listen_host=str(s.value("play/osc_host", d.listen_host)),
                             listen_port=int(s.value("play/osc_port", d.listen_port)),
                             send_port=int(s.value("play/osc_send_port", d.send_port)))
        except (ValueError, TypeError, LatentExplorerError):
            return d

    def _on_osc_ports_triggered(self) -> None:
        cfg = self.osc_config()
        hosts = [f"{LOCAL_ONLY} (this computer only)", f"{ANY_HOST} (the network too: a phone with TouchOSC)"]
        host, ok = QInputDialog.getItem(self.w, "OSC", "Listen for OSC from:", hosts,
                                        0 if cfg.listen_host == LOCAL_ONLY else 1, False)
        if not ok:
            return
        listen, ok = QInputDialog.getInt(self.w, "OSC", "Listen on UDP port:", cfg.listen_port, 0, 65535)
        if not ok:
            return
        self.w.settings.setValue("play/osc_host", host.split()[0])
        send, ok = QInputDialog.getInt(self.w, "OSC", "Send the cursor to UDP port (0: send nothing):",
                                       cfg.send_port, 0, 65535)
        if not ok:
            return
        self.w.settings.setValue("play/osc_port", listen)
        self.w.settings.setValue("play/osc_send_port", send)
        if self.osc is not None:  # listening already: again on the new ports
            self.set_osc(False)
            self.set_osc(True)

    def set_osc(self, on: bool) -> None:
        if not on:
            if self.osc is not None:
                self.osc.close()
                self.osc = None
            return
        if self.ensure_engine() is None:
            self.act_osc.setChecked(False)
            return
        cfg = self.osc_config()
        try:
            self.osc = OscLink(self.engine, config=cfg)
        except OSError as exc:
            self.act_osc.setChecked(False)
            self.w.notifier.error_occurred.emit(
                f"OSC could not listen on {cfg.listen_host}:{cfg.listen_port}: {exc.strerror or exc}")
            return
        self.w.notifier.status_posted.emit(
            f"OSC: listening on {cfg.listen_host}:{self.osc.port} (/latent/xy, /latent/play, /latent/stop, /latent/note), "
            f"sending to {self.osc.config.send_host}:{self.osc.config.send_port}")

    # --- live input ------------------------------------------------------------------------------
    def _on_live_file_triggered(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.w, "Play a file as live input", str(Path.home()),
                                              "Sound files (*.wav *.flac *.ogg *.mp3 *.aiff *.aif)")
        if path:
            self.start_live_file(path)

    def start_live_file(self, path: str | Path, *, realtime: bool = True) -> None:
        try:
            source = FileInput(path, realtime=realtime)
        except LatentExplorerError as exc:
            self.w.notifier.error_occurred.emit(f"{Path(path).name} cannot be played as live input: {exc}")
            return
        self._start_live(source, source.sr, Path(path).name)

    def start_live_card(self) -> None:
        try:
            card = SoundCardInput().open()
        except LatentExplorerError as exc:
            self.w.notifier.error_occurred.emit(f"Live input not started: {exc}")
            return
        self._start_live(card, card.sr, card.device_name)

    def _start_live(self, source: Any, sr: int, name: str) -> None:
        engine = self.ensure_engine()
        if engine is None:
            getattr(source, "close", lambda: None)()
            return
        self.stop_live()
        c = self.w.controller
        lm, enc = c.current, c.encoding
        resynth = self.act_resynth.isChecked()
        try:
            encoder = LiveEncoder(lm.model, lm.representation, latent_shape=enc.latent_shape, layout=enc.layout,
                                  sr=sr, target=engine if resynth else None)
            cursor = LiveCursor(c.embedding, c.map_codes()[0], sr=lm.representation.sample_rate,
                                point_mode=c.point_mode, layout=enc.layout)
        except LatentExplorerError as exc:
            getattr(source, "close", lambda: None)()
            self.w.notifier.error_occurred.emit(f"Live input not started: {exc}")
            return
        if resynth:
            engine.start()
        run = self.live = LiveRun(source, encoder, cursor, name=name, resynthesis=resynth, parent=self)
        run.moved.connect(self._on_live_moved)
        run.ended.connect(lambda path, r=run: self._on_live_ended(r, path))
        run.failed.connect(lambda msg, r=run: self._on_live_failed(r, msg))
        self.w.notifier.status_posted.emit(f"Live input: {name}")
        run.start()

    def _on_live_moved(self, xy: tuple[float, float]) -> None:
        self.scrub.show_cursor(xy)
        if self.osc is not None:
            self.osc.send_cursor(*xy)

    def _release_live(self, run: LiveRun) -> None:
        if run.resynthesis and self.engine is not None:  # the choice made when it started
            self.engine.set_code(None)
            self.engine.stop()
        if self.live is run:
            self.live = None

    def _on_live_ended(self, run: LiveRun, path: np.ndarray) -> None:
        self.live_path = path
        self._release_live(run)
        self.w.notifier.status_posted.emit(f"Live input ended: {run.name}")

    def _on_live_failed(self, run: LiveRun, message: str) -> None:
        self._release_live(run)
        self.w.notifier.error_occurred.emit(message)

    def stop_live(self) -> None:
        run = self.live
        if run is not None:
            run.stop()
            self._release_live(run)

    # --- feedback --------------------------------------------------------------------------------
    def _on_timer_tick(self) -> None:
        e = self.engine
        if e is None:
            return
        xy = e.cursor
        if xy is not None and not self.live_running and (self.scrub.dragging or e.active_voices):
            self.scrub.show_cursor(xy)
        if self.osc is not None and xy is not None and xy != self._last_sent:
            self.osc.send_cursor(*xy)  # map coordinates: the link sends them as 0..1
            self._last_sent = xy
        n = e.underruns + int(getattr(self.w.audio, "underflows", 0))  # ours, and the card's own
        self.underrun_label.setText(f"underruns: {n}" if n else "")
        failure = e.failure
        if failure is not None:  # the audio side stopped (faded to silence): say so, start afresh next time
            self.close_engine(offer_take=False)
            self.act_scrub.setChecked(False)
            self.w.notifier.error_occurred.emit(f"Live playing stopped: {failure}")

    def send_selected(self, name: str) -> None:
        if self.osc is not None:
            self.osc.send_selected(name)

    def stop(self) -> None:
        """Esc: every voice released, live input stopped."""
        self.stop_live()
        if self.engine is not None:
            self.engine.stop()
            self.engine.all_notes_off()

    def shutdown(self) -> None:
        """The window is closing: ports closed, engine dropped, map filter removed."""
        self.close_engine(offer_take=False)
        if self.midi is not None:
            self.midi.close()
        if self.osc is not None:
            self.osc.close()
            self.osc = None
        self.scrub.detach()


class _Idle:
    """The controls of no engine yet: a MIDI port may be opened before anything plays."""

    field = None
    cursor = None

    def set_xy(self, x: float, y: float) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def note_on(self, pitch: int, velocity: int) -> None: ...
    def note_off(self, pitch: int) -> None: ...
