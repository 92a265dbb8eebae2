"""A whole class on one server: N sessions draw digits while a training runs, M queue jobs.

    python -m bench.load [--drawers N] [--real R] [--queuers M] [--seconds S] [--no-keep]
                         [--port P]

Starts ``streamlit run app.py`` (full MNIST from $MNIST_DATA, a copy of $MNIST_MODELS_DIR or
/work/models-full in a temporary folder), starts one CNN training by pressing Start on the
Train page (the teacher's session, which stays there and reads the run's figures), measures
the training's images per second with nobody else on the server, then lets N sessions draw
digits on the Draw page in a loop and M sessions press Start on the Train page, measures it
again, and once more when they have left: the loaded speed is compared with the mean of the
two unloaded ones, as this machine's speed drifts from minute to minute. Prints the figures
and ends with one JSON line.

Keeping (issue 20; ``--no-keep`` leaves it out, to compare the Draw page's p95 without it):
after each drawing a drawing session chooses the digit it drew in the "Keep this drawing"
form, types its own writer name (its session's name) and presses Keep instead of Clear, as
long as that stays under the app's per-browser limits (KEPT_PER_MINUTE, KEPT_PER_BROWSER);
it waits for the fresh canvas and the "Kept as a N" toast. The served app keeps into a
drawings folder of the load's own (MNIST_DRAWINGS_DIR, a temporary folder); at the end the
class's set is read back (``ClassSet.read``) and compared, per writer and digit, with the
Keeps pressed: lost (pressed, not in the set) and duplicated (in the set more often than
pressed). The server time of a keep is ``ClassSet.keep`` itself, timed here after the load
(the training still running on the server): N keeps into a set already holding a class's
worth of drawings (1,500), as the Draw page calls it.

Sessions: R drawing sessions are real Chromium contexts (one browser, one context each); the
other drawing sessions, the teacher and the queuing sessions speak Streamlit's websocket
protocol themselves (``streamlit.proto`` messages on /_stcore/stream). Chromium cannot be
spared on a 2-core machine beside the server and the training it would be measuring: one
Train page with its live charts takes a whole core to render (measured), which in a class
the students' laptops and the projector pay, not the server.

Why the websocket sessions are representative: the server cannot tell them from a browser.
They send the messages a browser sends (captured from Chromium with Playwright's websocket
frame events): a ``rerun_script`` of the Draw page's fragment after every stroke, with every
widget's state and the canvas component's value (fabric.js's JSON of the paths plus the
canvas as a PNG data URL, 336x336, rendered the way the canvas draws strokes by
bench/synthetic_digits.py); a Clear button press between drawings; and, like the browser,
a ``rerun_script`` of each auto-rerun fragment every interval the server asks for (the
training progress that polls while a run trains). A stroke is sent after the time a hand
takes to draw it. So the server runs the same scripts, on the same inputs, as often.

What they do not exercise: the browser's side. No rendering, layout or JavaScript (the time
from the last message to pixels, measured on the real sessions only), no static files or
component JS fetched per page load, no forward-message cache. Their predictions count as
"shown" when the ForwardMsgs with both "ANN predicts" and "CNN predicts" of a run started
after the drawing's last stroke have arrived; a real session's when its page shows both
after those messages.

Mouse-up-to-predictions latency is taken for each drawing's last stroke: earlier strokes'
runs may be cut short by the next stroke, as they are for a user.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, deque
from contextlib import AsyncExitStack, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from bench.browser import (
    CANVAS,
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    browser_missing,
    clear_of_toolbar,
    running_app,
    stroke_points,
)
from bench.synthetic_digits import random_digit, render
from mnist_core.class_drawings import KEPT_PER_BROWSER, KEPT_PER_MINUTE, ClassSet
from mnist_core.drawings import DrawingsFolder
from mnist_core.jobs import default_job
from mnist_core.links import link
from mnist_core.preprocessing import BRUSH_SIZE, CANVAS_SIZE, preprocess_canvas
from mnist_core.text import as_read

PORTS = range(8641, 8650)  # the ports this benchmark may serve on
MODELS = "/work/models-full"  # default full-set models, copied: the run never writes there
PEN_SPEED = 600  # canvas pixels a second: how fast a hand draws a stroke
FAST_MOVES = 12  # pixels between a real session's mouse moves: a third of the CDP calls
PREDICTED = re.compile(r"(ANN|CNN) predicts \*\*(\d)\*\*")
TARGETS = {"drawers": 30, "errors": 0, "p95_s": 1.0, "server_rss_mb": 2048, "speed_ratio": 0.7}
TARGETS |= {"kept_lost": 0, "kept_duplicated": 0, "keep_p95_ms": 50.0}
KEEP_WINDOW_S = 65.0  # a session keeps at most KEEP_MARGIN fewer than the limit in this long:
KEEP_MARGIN = 2  # the server counts a minute from when it wrote, after the Keep was sent
CLASS_SIZE = 1_500  # drawings the set holds when a keep is timed: a class's term of them
FABRIC_PATH = {  # a freedraw path's fields as fabric.js 7 sends them, but for its geometry
    **dict.fromkeys(
        ["lockMovementX", "lockMovementY", "lockRotation", "lockScalingX", "lockScalingY"], False
    ),
    **dict.fromkeys(["lockSkewingX", "lockSkewingY", "lockScalingFlip"], False),
    "type": "Path",
    "version": "7.4.0",
    "originX": "center",
    "originY": "center",
    "fill": None,
    "stroke": "#FFFFFF",
    "strokeWidth": BRUSH_SIZE,
    "strokeDashArray": None,
    "strokeLineCap": "round",
    "strokeDashOffset": 0,
    "strokeLineJoin": "round",
    "strokeUniform": False,
    "strokeMiterLimit": 10,
    "scaleX": 1,
    "scaleY": 1,
    "angle": 0,
    "flipX": False,
    "flipY": False,
    "opacity": 1,
    "shadow": None,
    "visible": True,
    "backgroundColor": "",
    "fillRule": "nonzero",
    "paintFirst": "fill",
    "globalCompositeOperation": "source-over",
    "skewX": 0,
    "skewY": 0,
}


@dataclass(frozen=True)
class Settings:
    """What to run: N drawing sessions (R of them real browsers), M queuing, for how long."""

    drawers: int = 30
    real: int = 6
    queuers: int = 2
    seconds: float = 60.0  # the loaded measurement
    unloaded_seconds: float = 30.0  # the training alone, measured before and after
    warmup_seconds: float = 8.0  # of training before that: its first batches are slow
    think_seconds: float = 2.0  # a student looks at the predictions this long (on average)
    queue_every: float = 30.0  # a queuing session presses Start again after this long
    keep: bool = True  # drawing sessions keep their drawings (Keep instead of Clear)
    keep_timings: int = 100  # keeps timed after the load (ClassSet.keep); 0: none
    class_size: int = CLASS_SIZE  # drawings already in the set they are timed on
    seed: int = 0


@dataclass
class SessionLog:
    """What one session saw: its drawings' latencies and readings, errors, messages."""

    name: str
    kind: str  # "browser" or "websocket", or "queuer"
    latencies: list[float] = field(default_factory=list)  # seconds, drawings in the window
    readings: list[tuple[int, int, int]] = field(default_factory=list)  # drawn, ANN, CNN
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # warnings and news the page showed
    kept: list[int] = field(default_factory=list)  # the digits it pressed Keep for
    kept_at: list[float] = field(default_factory=list)  # time.time() of each Keep
    keep_seconds: list[float] = field(default_factory=list)  # Keep to the fresh canvas

    def may_keep(self, settings_keep: bool) -> bool:
        """Whether to keep the next drawing: asked to, and under the app's limits."""
        now = time.time()
        recent = [t for t in self.kept_at if now - t < KEEP_WINDOW_S]
        return (
            settings_keep
            and len(recent) <= KEPT_PER_MINUTE - KEEP_MARGIN - 1
            and len(self.kept) < KEPT_PER_BROWSER - KEEP_MARGIN
        )

    def pressed_keep(self, digit: int) -> None:
        self.kept.append(digit)
        self.kept_at.append(time.time())

    def error(self, text: str) -> None:
        self.errors.append(f"{self.name}: {text}"[:500])


@dataclass(frozen=True)
class Sample:
    """Memory and CPU time of the server, its worker and this benchmark at one moment."""

    at: float
    server_rss_mb: float
    worker_rss_mb: float
    cpu_s: dict[str, float]  # "server", "worker", "bench" (this process), "chromium"
    machine_busy_s: float  # all cores' non-idle seconds since boot


@dataclass
class LoadReport:
    """The figures; ``passed`` compares them with the issue's targets."""

    drawers: int
    real: int
    websocket: int
    queuers: int
    seconds: float
    errors: int
    error_examples: list[str]
    drawings_shown: dict[str, int]  # per session kind
    predictions_per_s: float
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_max_s: float | None
    latency_p95_by_kind_s: dict[str, float | None]
    cnn_right_share: float | None
    server_rss_mb: dict[str, float]  # before the sessions, peak, at the end
    worker_rss_mb: dict[str, float]
    cpu_percent: dict[str, dict[str, int]]  # of one core, training alone and loaded
    # before, loaded, after (the sessions gone); unloaded: mean of before and after; ratio
    training_images_per_s: dict[str, float | None]
    queue_observations: list[str]
    keeping: bool = False
    # Keeps pressed, drawings found in the set; lost and duplicated per writer and digit
    kept: dict[str, int] = field(default_factory=dict)
    kept_examples: list[str] = field(default_factory=list)
    keep_to_canvas_s: dict[str, float | None] = field(default_factory=dict)  # p50, p95, max
    keep_server_ms: dict[str, float | None] = field(default_factory=dict)  # ClassSet.keep
    passed: dict[str, bool] = field(default_factory=dict)


# --- what one session is shown: ForwardMsgs, read alike for browsers and websockets -------


class Conversation:
    """One session's side of the app's websocket: what it is shown, and the widget states
    it would send back.

    ``expect_drawing(t)`` arms a drawing whose last stroke ended at ``t``; ``sent_drawing()``
    marks the rerun that carries it; both predictions of a run that starts (``new_session``)
    after that count as shown.
    """

    def __init__(self, log: SessionLog) -> None:
        self.log = log
        self.page_script_hash = ""
        self.draw_fragment = ""
        self.canvas_id = ""
        self.clear_id = ""
        self.start_id = ""
        self.meant_id = ""  # the keep form's digit pills, its name field, its Keep button
        self.writer_id = ""
        self.keep_id = ""
        self.toasts: list[str] = []
        self.defaults: dict[str, object] = {}  # widget id -> WidgetState proto (its default)
        self.auto_reruns: dict[str, float] = {}  # fragment id -> interval in seconds
        self.metrics: dict[str, str] = {}  # label -> shown value (the Train page's run)
        self.finished = asyncio.Event()  # a script run finished
        self.trace: deque[str] = deque(maxlen=12)  # the last messages, for error reports
        self._pending: dict | None = None
        self.shown: asyncio.Future | None = None

    def expect_drawing(self, drawn: int) -> asyncio.Future:
        self._pending = {"digit": drawn, "sent": False, "started": False, "read": {}}
        self.shown = asyncio.get_running_loop().create_future()
        return self.shown

    def sent_drawing(self) -> None:
        if self._pending is not None:
            self._pending["sent"] = True

    def received(self, message, at: float) -> None:
        """Take in one ForwardMsg that arrived at ``at`` (perf_counter seconds)."""
        kind = message.WhichOneof("type")
        if kind != "delta":
            self.trace.append(f"{at:.2f} {kind}")
        if kind == "new_session":
            if self._pending and self._pending["sent"]:
                self._pending["started"] = True
        elif kind == "navigation":
            self.page_script_hash = message.navigation.page_script_hash
        elif kind == "script_finished":
            self.finished.set()
        elif kind == "auto_rerun":
            self.auto_reruns[message.auto_rerun.fragment_id] = message.auto_rerun.interval
        elif kind == "stop_auto_rerun":
            for fragment in message.stop_auto_rerun.fragment_ids:
                self.auto_reruns.pop(fragment, None)
        elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
            self._element(message.delta.new_element, message.delta.fragment_id, at)

    def _element(self, element, fragment: str, at: float) -> None:
        from streamlit.proto.Alert_pb2 import Alert
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        kind = element.WhichOneof("type")
        if kind == "markdown" and (found := PREDICTED.search(element.markdown.body)):
            self._prediction(found[1], int(found[2]), at)
        elif kind == "exception":
            where = element.exception.stack_trace[-1:] or [""]
            self.log.error(f"exception on the page: {element.exception.message} {where[0]}")
        elif kind == "alert":
            if element.alert.format == Alert.ERROR:
                self.log.error(f"error on the page: {element.alert.body}")
            elif element.alert.format in (Alert.WARNING, Alert.INFO, Alert.SUCCESS):
                self.log.notes.append(as_read(element.alert.body))
        elif kind == "metric":
            self.metrics[element.metric.label] = element.metric.body
        elif kind == "toast":
            self.toasts.append(as_read(element.toast.body))
        elif kind == "bidi_component" and "-canvas-" in element.bidi_component.id:
            if element.bidi_component.id != self.canvas_id:  # a new canvas, a new keep form
                self.defaults.pop(self.meant_id, None)
                self.meant_id = self.keep_id = ""
            self.canvas_id, self.draw_fragment = element.bidi_component.id, fragment
        elif kind == "button" and element.button.is_form_submitter:
            if element.button.label == "Keep":
                self.keep_id = element.button.id
        elif kind == "text_input" and element.text_input.label == "Your name (optional)":
            self.writer_id = element.text_input.id
        elif kind == "button" and element.button.label == "Clear":
            self.clear_id = element.button.id
        elif kind == "button" and element.button.label == "Start training":
            self.start_id = element.button.id
        elif kind in ("button_group", "slider", "selectbox"):
            widget = getattr(element, kind)
            state = WidgetState(id=widget.id)
            if kind == "button_group" and widget.label == "I meant":
                self.meant_id = widget.id
            if kind == "button_group":  # the browser sends an option's icon and text
                state.string_array_value.data.extend(
                    " ".join(
                        filter(None, [widget.options[i].content_icon, widget.options[i].content])
                    )
                    for i in widget.default
                )
            elif kind == "slider" and widget.options:  # a select_slider sends its labels
                state.string_array_value.data.extend(widget.options[int(i)] for i in widget.default)
            elif kind == "slider":
                state.double_array_value.data.extend(widget.default)
            elif widget.HasField("default"):
                state.string_value = widget.options[widget.default]
            self.defaults[widget.id] = state

    def _prediction(self, model: str, digit: int, at: float) -> None:
        pending = self._pending
        if not (pending and pending["started"]):
            return
        pending["read"][model] = digit
        if len(pending["read"]) == 2 and self.shown and not self.shown.done():
            self.shown.set_result((at, pending["read"]["ANN"], pending["read"]["CNN"]))
            self._pending = None

    def training_images(self) -> tuple[float, float] | None:
        """(seconds trained, images seen) of the run the Train page shows, if it shows one."""
        try:
            elapsed = float(self.metrics["Elapsed"].split()[0])
            per_s = float(self.metrics["Images per second"].replace(",", ""))
        except (KeyError, ValueError, IndexError):
            return None
        return elapsed, elapsed * per_s


def _forward(payload: bytes):
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    message = ForwardMsg()
    message.ParseFromString(payload)
    return message


# --- drawings, as the canvas sends them -----------------------------------------------------


@dataclass(frozen=True)
class Drawing:
    """A digit's canvas values after each stroke (the JSON the component sends) and the
    seconds a hand takes for each stroke."""

    digit: int
    values: tuple[str, ...]
    stroke_seconds: tuple[float, ...]


def _fabric_path(points: np.ndarray) -> dict:
    """A freedraw stroke (canvas pixels) as fabric.js's Path: quadratic curves through the
    midpoints, as its pencil brush makes them."""
    commands = [["M", *points[0]]]
    for control, following in zip(points[:-1], points[1:], strict=True):
        commands.append(["Q", *control, *((control + following) / 2)])
    commands.append(["L", *points[-1]])
    low, high = points.min(axis=0), points.max(axis=0)
    centre, size = (low + high) / 2, high - low
    geometry = {"left": centre[0], "top": centre[1], "width": size[0], "height": size[1]}
    rounded = [[c[0], *(round(float(v), 4) for v in c[1:])] for c in commands]
    return FABRIC_PATH | {k: round(float(v), 4) for k, v in geometry.items()} | {"path": rounded}


def make_drawing(rng: np.random.Generator, digit: int) -> Drawing:
    """A random pen-stroke ``digit``, as the canvas reports it stroke by stroke."""
    strokes = clear_of_toolbar(random_digit(rng, digit, brush=BRUSH_SIZE))
    values, seconds, paths = [], [], []
    for done in range(1, len(strokes) + 1):
        points = np.asarray(strokes[done - 1]) * CANVAS_SIZE
        paths.append(_fabric_path(points))
        png = io.BytesIO()
        Image.fromarray(render(strokes[:done])).save(png, format="PNG")
        data = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
        raw = {"version": "7.4.0", "objects": list(paths), "background": "#000000"}
        values.append(json.dumps({"drawing": {"raw": raw, "data": data}}))
        seconds.append(float(np.hypot(*np.diff(points, axis=0).T).sum()) / PEN_SPEED)
    return Drawing(digit, tuple(values), tuple(seconds))


# --- sessions -------------------------------------------------------------------------------


class Phase:
    """When sessions may start drawing (``go``), until when, the measured window, and
    whether they keep their drawings."""

    def __init__(self, think_seconds: float, keep: bool = False) -> None:
        self.think_seconds = think_seconds
        self.keep = keep
        self.go = asyncio.Event()
        self.window: tuple[float, float] = (float("inf"), float("inf"))  # perf_counter
        self.stop_at = float("inf")

    def running(self) -> bool:
        return time.perf_counter() < self.stop_at

    def counts(self, at: float) -> bool:
        return self.window[0] <= at <= self.window[1]


class SocketSession:
    """A session at the websocket level, on one page: the messages a browser sends."""

    def __init__(self, url: str, log: SessionLog, page: str = "draw", query: str = "") -> None:
        self.url, self.log, self.page, self.query = url, log, page, query
        self.conversation = Conversation(log)
        self.canvas_value: str | None = None
        self.socket = None
        self.closing = False
        self._tasks: list[asyncio.Task] = []

    async def open(self, shown, what: str) -> None:
        """Connect and ask for the page, like a browser opening its address; returns once
        ``shown(conversation)`` is true (TimeoutError naming ``what`` after 120 s)."""
        from websockets.asyncio.client import connect

        address = self.url.replace("http", "ws", 1) + "/_stcore/stream"
        self.socket = await connect(address, subprotocols=["streamlit"], max_size=None)
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._auto_rerun())]
        await self._send(page_name=self.page)
        await self._wait_for(lambda: shown(self.conversation), 120, what)

    async def close(self) -> None:
        self.closing = True
        for task in self._tasks:
            task.cancel()
        if self.socket is not None:
            await self.socket.close()

    async def press(self, button_id: str, fragment: str = "") -> None:
        """Click the button ``button_id`` (a form's submit button sends the form's values:
        here its defaults, which a link sets)."""
        await self._send(fragment=fragment, clicked=button_id)

    async def draw_in_a_loop(
        self, phase: Phase, ready: asyncio.Queue, drawings: list[Drawing]
    ) -> None:
        """Open the Draw page, then draw, look, Clear, until the phase ends."""
        from websockets.exceptions import ConnectionClosed

        try:
            # Ready once the page's first run has finished: the canvas shows before it
            # does, and the server's first Draw page loads the models (18 s here, training).
            await self.open(lambda c: c.canvas_id and c.finished.is_set(), "the Draw page")
            await ready.put(self.log.name)
            await phase.go.wait()
            await self._draw_in_a_loop(phase, drawings)
        except (ConnectionClosed, OSError, TimeoutError) as error:
            if not self.closing:
                self.log.error(f"session stopped: {error!r}")
        finally:
            with suppress(asyncio.QueueFull):
                ready.put_nowait(self.log.name)  # never keep the others waiting
            await self.close()

    async def queue_in_a_loop(self, phase: Phase, ready: asyncio.Queue, every: float) -> None:
        """Open the Train page, then press Start every ``every`` seconds while the run trains,
        noting what the page says back."""
        from websockets.exceptions import ConnectionClosed

        try:
            await self.open(lambda c: c.start_id, "the Train page's Start button")
            await ready.put(self.log.name)
            await phase.go.wait()
            while phase.running():
                before = len(self.log.notes)
                await self.press(self.conversation.start_id)
                await asyncio.sleep(3)
                said = self.log.notes[before:] or ["(nothing new shown)"]
                self.log.notes[before:] = [f"after Start: {text}" for text in dict.fromkeys(said)]
                await asyncio.sleep(min(every, max(0.0, phase.stop_at - time.perf_counter())))
        except (ConnectionClosed, OSError, TimeoutError) as error:
            if not self.closing:
                self.log.error(f"queuing session stopped: {error!r}")
        finally:
            with suppress(asyncio.QueueFull):
                ready.put_nowait(self.log.name)
            await self.close()

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for payload in self.socket:
                self.conversation.received(_forward(payload), time.perf_counter())
        except ConnectionClosed as error:
            if not self.closing:
                self.log.error(f"websocket disconnected: {error!r}")

    async def _auto_rerun(self) -> None:
        """Rerun each fragment the server asked to poll, every interval it asked for."""
        due: dict[str, float] = {}
        while True:
            now = time.perf_counter()
            for fragment, interval in list(self.conversation.auto_reruns.items()):
                if now >= due.setdefault(fragment, now + interval):
                    due[fragment] = now + interval
                    await self._send(fragment=fragment, auto=True)
            await asyncio.sleep(0.05)

    async def _send(
        self, page_name: str = "", fragment: str = "", auto: bool = False, states=(), **trigger
    ):
        from streamlit.proto.BackMsg_pb2 import BackMsg

        message = BackMsg()
        rerun = message.rerun_script
        rerun.page_name = page_name
        rerun.page_script_hash = self.conversation.page_script_hash
        rerun.fragment_id = fragment
        rerun.is_auto_rerun = auto
        rerun.context_info.timezone = "UTC"
        rerun.context_info.locale = "en-US"
        rerun.query_string = self.query
        rerun.context_info.url = f"{self.url}/{self.page}" + (
            f"?{self.query}" if self.query else ""
        )
        rerun.context_info.color_scheme = "light"
        given = {state.id: state for state in states}  # a form's values, sent on its submit
        for state in [*self.conversation.defaults.values(), *given.values()]:
            if state.id not in given or state is given[state.id]:
                rerun.widget_states.widgets.add().CopyFrom(state)
        if self.canvas_value is not None:
            canvas = rerun.widget_states.widgets.add(id=self.conversation.canvas_id)
            canvas.json_value = self.canvas_value
        if clicked := trigger.get("clicked"):
            rerun.widget_states.widgets.add(id=clicked, trigger_value=True)
        await self.socket.send(message.SerializeToString())

    async def _wait_for(self, condition, seconds: float, what: str) -> None:
        deadline = time.perf_counter() + seconds
        while not condition():
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{what} did not come within {seconds:g} s")
            await asyncio.sleep(0.02)

    async def _draw_in_a_loop(self, phase: Phase, drawings: list[Drawing]) -> None:
        rng = random.Random(self.log.name)
        conversation = self.conversation
        while phase.running():
            drawing = rng.choice(drawings)
            for done, (value, seconds) in enumerate(
                zip(drawing.values, drawing.stroke_seconds, strict=True), start=1
            ):
                await asyncio.sleep(seconds)  # the hand draws the stroke
                self.canvas_value = value
                if done == len(drawing.values):
                    shown = conversation.expect_drawing(drawing.digit)
                    released = time.perf_counter()
                    conversation.sent_drawing()
                await self._send(fragment=conversation.draw_fragment)
            try:
                at, ann, cnn = await asyncio.wait_for(shown, 20)
            except TimeoutError:
                trace = ", ".join(conversation.trace)
                self.log.error(f"no predictions 20 s after drawing a {drawing.digit}: {trace}")
                continue
            if phase.counts(at):
                self.log.latencies.append(at - released)
                self.log.readings.append((drawing.digit, ann, cnn))
            await asyncio.sleep(rng.uniform(0.5, 1.5) * phase.think_seconds)
            old = conversation.canvas_id
            if self.log.may_keep(phase.keep) and conversation.keep_id:
                if not await self._keep(drawing.digit):
                    return
            else:
                self.canvas_value = None
                sent = time.perf_counter()
                await self._send(fragment=conversation.draw_fragment, clicked=conversation.clear_id)
                try:
                    await self._wait_for(lambda old=old: conversation.canvas_id != old, 20, "Clear")
                except TimeoutError:
                    trace = ", ".join(conversation.trace)
                    self.log.error(f"no new canvas 20 s after Clear (sent {sent:.2f}): {trace}")
                    return
            await asyncio.sleep(0.3)

    async def _keep(self, digit: int) -> bool:
        """Choose ``digit`` in the keep form, type the session's name, press Keep (the
        form's values and the canvas in one rerun of the fragment, as a browser sends them);
        wait for the fresh canvas and the toast. False if they did not come."""
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        conversation = self.conversation
        old, toasts = conversation.canvas_id, len(conversation.toasts)
        meant = WidgetState(id=conversation.meant_id)
        meant.string_array_value.data.append(str(digit))
        writer = WidgetState(id=conversation.writer_id, string_value=self.log.name)
        sent = time.perf_counter()
        self.log.pressed_keep(digit)
        await self._send(
            fragment=conversation.draw_fragment,
            states=[meant, writer],
            clicked=conversation.keep_id,
        )
        self.canvas_value = None  # the canvas the app shows next is a fresh one
        conversation.defaults[writer.id] = writer  # a form's value stays sent once submitted

        def kept() -> bool:
            said = conversation.toasts[toasts:]
            return conversation.canvas_id != old and f"Kept as a {digit}" in " ".join(said)

        try:
            await self._wait_for(kept, 20, "the fresh canvas after Keep")
        except TimeoutError:
            trace = ", ".join(conversation.trace)
            self.log.error(f"no fresh canvas and toast 20 s after Keep (a {digit}): {trace}")
            return False
        self.log.keep_seconds.append(time.perf_counter() - sent)
        return True


class BrowserSession:
    """A real Chromium context on the Draw or the Train page, watched through its websocket."""

    def __init__(self, browser, url: str, log: SessionLog) -> None:
        self.browser, self.url, self.log = browser, url, log
        self.conversation = Conversation(log)
        self.closing = False
        self.page = None

    async def open(self, path: str) -> None:
        context = await self.browser.new_context(viewport=VIEWPORT)
        self.page = await context.new_page()
        self.page.on("websocket", self._watch)
        self.page.on("pageerror", lambda error: self.log.error(f"page error: {error}"))
        await self.page.goto(f"{self.url}{path}")

    def _watch(self, socket) -> None:
        socket.on("framereceived", self._received)
        socket.on("framesent", self._sent)
        socket.on("close", lambda _: self.closing or self.log.error("websocket disconnected"))

    def _received(self, payload) -> None:
        if isinstance(payload, bytes):
            self.conversation.received(_forward(payload), time.perf_counter())

    def _sent(self, payload) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        if not isinstance(payload, bytes):
            return
        message = BackMsg()
        message.ParseFromString(payload)
        rerun = message.rerun_script
        if message.WhichOneof("type") == "rerun_script" and not rerun.is_auto_rerun:
            ids = {state.id for state in rerun.widget_states.widgets}
            if self.conversation.canvas_id in ids:
                self.conversation.sent_drawing()

    async def close(self) -> None:
        self.closing = True
        if self.page is not None:
            with suppress(Exception):
                await self.page.context.close()

    async def draw_in_a_loop(self, phase: Phase, ready: asyncio.Queue) -> None:
        page, conversation = self.page, self.conversation
        rng = np.random.default_rng(abs(hash(self.log.name)) % 2**32)
        try:
            await page.get_by_text("ANN: waiting for a drawing").wait_for(timeout=120_000)
            await page.wait_for_timeout(500)  # the canvas mounts
            await ready.put(self.log.name)
            await phase.go.wait()
            while phase.running():
                digit = int(rng.integers(10))
                strokes = clear_of_toolbar(random_digit(rng, digit, brush=BRUSH_SIZE))
                box = await page.locator(CANVAS).bounding_box()
                for number, stroke in enumerate(strokes, start=1):
                    points = stroke_points(box, stroke, every=FAST_MOVES)
                    await page.mouse.move(*points[0])
                    await page.mouse.down()
                    for point in points[1:]:
                        await page.mouse.move(*point)
                    if number == len(strokes):
                        shown = conversation.expect_drawing(digit)
                        released = time.perf_counter()
                    await page.mouse.up()
                try:
                    _, ann, cnn = await asyncio.wait_for(shown, 20)
                    text = page.get_by_text(re.compile(r"CNN predicts \d"))
                    await text.wait_for(timeout=5_000)
                except Exception as error:  # asyncio's or Playwright's TimeoutError
                    self.log.error(f"no predictions 20 s after drawing a {digit}: {error!r}")
                    continue
                at = time.perf_counter()
                if phase.counts(at):
                    self.log.latencies.append(at - released)
                    self.log.readings.append((digit, ann, cnn))
                await asyncio.sleep(rng.uniform(0.5, 1.5) * phase.think_seconds)
                if self.log.may_keep(phase.keep):
                    await self._keep(digit)
                else:
                    await self._clear()
        except Exception as error:  # a page that broke: counted, the others go on
            if not self.closing:
                self.log.error(f"session stopped: {error!r}")
        finally:
            with suppress(asyncio.QueueFull):
                ready.put_nowait(self.log.name)

    async def _keep(self, digit: int) -> None:
        """Choose ``digit`` in the keep form, type the session's name, press Keep, and wait
        for the fresh canvas and the toast, as a student sees them."""
        page = self.page
        form = page.locator("[data-testid=stForm]")
        await form.locator("[data-testid=stButtonGroup] button").nth(digit).click()
        await form.locator("input[type=text]").fill(self.log.name)
        sent = time.perf_counter()
        self.log.pressed_keep(digit)
        await self._clear(form.get_by_role("button", name="Keep"))
        self.log.keep_seconds.append(time.perf_counter() - sent)
        await page.get_by_text(f"Kept as a {digit}").first.wait_for(timeout=20_000)

    async def _clear(self, button=None) -> None:
        """Press Clear (or ``button``, which clears too) and wait for the fresh canvas."""
        page = self.page
        classes = await page.locator("[class*=st-key-canvas-]").first.get_attribute("class")
        number = int(re.search(r"st-key-canvas-(\d+)", classes)[1])
        await (button or page.get_by_role("button", name="Clear")).click()
        await page.get_by_text("Draw a digit on the black square").wait_for(timeout=20_000)
        fresh = page.locator(f"[class*=st-key-canvas-{number + 1}] canvas.upper-canvas")
        await fresh.wait_for(state="visible", timeout=20_000)
        while await page.locator(CANVAS).count() != 1:
            await page.wait_for_timeout(50)
        await page.wait_for_timeout(300)


# --- the server's memory and CPU, from /proc ------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        children = _children(todo.pop())
        found += children
        todo += children
    return found


def _rss_mb(pid: int | None) -> float:
    if pid is None:
        return 0.0
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with suppress(OSError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _machine_busy_s() -> float:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def worker_pid(server_pid: int) -> int | None:
    """The training worker: the server's child ``python -m mnist_core.worker``."""
    for pid in _descendants(server_pid):
        with suppress(OSError):
            if b"mnist_core.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    return None


CLIENT_NICENESS = 19


def as_clients(server_pid: int) -> None:
    """Run this machine's Chromium processes at the lowest CPU priority. They stand for the
    students' laptops, which would take none of the server's CPU: here they take only what
    the server and its training leave (one Chromium renders the Draw page at ~25% of a core).
    """
    server = {server_pid, *_descendants(server_pid)}
    server_group = _autogroup(server_pid)
    for pid in _descendants(os.getpid()):
        if pid not in server:
            for thread in Path(f"/proc/{pid}/task").glob("*"):  # Linux: niceness is a thread's
                with suppress(OSError):
                    os.setpriority(os.PRIO_PROCESS, int(thread.name), CLIENT_NICENESS)
            # With the kernel's autogroups, niceness only ranks threads within a session's
            # group, and the groups share the CPU evenly: Chromium starts its own session.
            group = _autogroup(pid)
            if group and group != server_group:
                with suppress(OSError):
                    Path(f"/proc/{pid}/autogroup").write_text(str(CLIENT_NICENESS))


def _autogroup(pid: int) -> str | None:
    """The scheduler's autogroup of ``pid`` ("/autogroup-N"), or None without autogroups."""
    with suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/autogroup").read_text().split()[0]
    return None


def sample(server_pid: int) -> Sample:
    worker = worker_pid(server_pid)
    server = {server_pid, *_descendants(server_pid)}  # running_app's: this process's child
    browsers = [pid for pid in _descendants(os.getpid()) if pid not in server]
    return Sample(
        at=time.perf_counter(),
        server_rss_mb=_rss_mb(server_pid),
        worker_rss_mb=_rss_mb(worker),
        cpu_s={
            "server": _cpu_s([server_pid]),
            "worker": _cpu_s([worker] if worker else []),
            "bench": _cpu_s([os.getpid()]),
            "chromium": _cpu_s(browsers),
        },
        machine_busy_s=_machine_busy_s(),
    )


async def _sample_every(server_pid: int, samples: list[Sample], seconds: float = 1.0) -> None:
    while True:
        samples.append(sample(server_pid))
        await asyncio.sleep(seconds)


# --- the measurement ------------------------------------------------------------------------


def _query(seconds: float) -> str:
    """The Train page's link to the measured run: its settings filled in."""
    return link("/train", training_job(seconds)).split("?", 1)[1]


def training_job(seconds: float):
    """The run measured: the default CNN, for ``seconds`` at most (a time budget), long
    enough to outlast the measurement."""
    return default_job("cnn", epochs=200, time_budget=seconds, name="load-test-cnn")


async def _training_rate(teacher: SocketSession, seconds: float) -> float | None:
    """Images per second the run trains over the next ``seconds``, from the Train page's
    figures (seconds trained, images per second so far)."""
    first = teacher.conversation.training_images()
    await asyncio.sleep(seconds)
    last = teacher.conversation.training_images()
    if first is None or last is None or last[0] <= first[0]:
        return None
    return (last[1] - first[1]) / (last[0] - first[0])


async def measure(
    url: str, server_pid: int, settings: Settings, say=print, drawings_dir: str | None = None
) -> LoadReport:
    """Drive the served app at ``url`` as ``settings`` say; the server's process id is
    ``server_pid`` (for its memory), its drawings folder ``drawings_dir`` (MNIST_DRAWINGS_DIR:
    the kept drawings are read back from it; needed when ``settings.keep``). Returns the
    figures."""
    from playwright.async_api import async_playwright

    if settings.keep and drawings_dir is None:
        raise ValueError("keeping drawings needs the served app's drawings folder")
    phase = Phase(settings.think_seconds, settings.keep)
    samples: list[Sample] = []
    sampler = asyncio.create_task(_sample_every(server_pid, samples))
    rng = np.random.default_rng(settings.seed)
    drawings = [make_drawing(rng, digit % 10) for digit in range(40)]
    budget = 60 + 2 * settings.unloaded_seconds + 120 + settings.seconds + 90
    teacher = SocketSession(url, SessionLog("teacher", "teacher"), "train", query=_query(budget))
    logs: list[SessionLog] = [teacher.log]
    await teacher.open(lambda c: c.start_id, "the Train page's Start button")
    await teacher.press(teacher.conversation.start_id)
    say("training started from the Train page; waiting for it to warm up")
    deadline = time.perf_counter() + 120
    while (teacher.conversation.training_images() or (0, 0))[0] < settings.warmup_seconds:
        if time.perf_counter() > deadline:
            teacher.log.error(f"no training progress 120 s after Start: {teacher.log.notes}")
            break
        await asyncio.sleep(0.5)
    alone = sample(server_pid)
    unloaded = await _training_rate(teacher, settings.unloaded_seconds)
    say(f"unloaded, before the sessions: {unloaded or 0:,.0f} images/s")
    before = sample(server_pid)
    async with AsyncExitStack() as stack:
        browser = None
        if settings.real:  # Playwright's driver only when a real browser is asked for
            playwright = await stack.enter_async_context(async_playwright())
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            stack.push_async_callback(browser.close)
            as_clients(server_pid)
        ready: asyncio.Queue = asyncio.Queue()
        sessions, tasks = [], []
        for number in range(settings.real):
            session = BrowserSession(browser, url, SessionLog(f"browser-{number}", "browser"))
            await session.open("/draw")
            sessions.append(session)
            tasks.append(asyncio.create_task(session.draw_in_a_loop(phase, ready)))
        for number in range(settings.drawers - settings.real):
            session = SocketSession(url, SessionLog(f"websocket-{number}", "websocket"))
            sessions.append(session)
            tasks.append(asyncio.create_task(session.draw_in_a_loop(phase, ready, drawings)))
        for number in range(settings.queuers):
            session = SocketSession(url, SessionLog(f"queuer-{number}", "queuer"), "train")
            sessions.append(session)
            tasks.append(
                asyncio.create_task(session.queue_in_a_loop(phase, ready, settings.queue_every))
            )
        logs += [session.log for session in sessions]
        if settings.real:
            as_clients(server_pid)  # the renderers the sessions started
        waiting = len(tasks)
        with suppress(TimeoutError):
            async with asyncio.timeout(120):
                while waiting:
                    await ready.get()
                    waiting -= 1
        say(f"{len(tasks) - waiting} of {len(tasks)} sessions ready; drawing")
        started = time.perf_counter()
        phase.window = (started, started + settings.seconds)
        phase.stop_at = started + settings.seconds
        phase.go.set()
        await asyncio.sleep(3)
        start_sample = sample(server_pid)
        loaded = await _training_rate(teacher, settings.seconds - 3)
        end_sample = sample(server_pid)
        with suppress(TimeoutError):
            async with asyncio.timeout(30):
                await asyncio.gather(*tasks, return_exceptions=True)
        for session in sessions:
            await session.close()
    # Again with nobody else on the server: this machine's speed drifts from minute to
    # minute, and the load's measurement sits between the two.
    unloaded_after = await _training_rate(teacher, settings.unloaded_seconds)
    say(f"unloaded, after the sessions: {unloaded_after or 0:,.0f} images/s")
    await teacher.close()
    sampler.cancel()
    samples.append(sample(server_pid))
    report = _report(
        settings,
        logs,
        (alone, before, start_sample, end_sample, samples),
        (unloaded, loaded, unloaded_after),
        phase.window,
    )
    if settings.keep:
        report.keeping = True
        report.kept, report.kept_examples = kept_in_set(drawings_dir, logs)
        keeps = [t for log in logs for t in log.keep_seconds]
        report.keep_to_canvas_s = {
            "p50": _round(_percentile(keeps, 0.5)),
            "p95": _round(_percentile(keeps, 0.95)),
            "max": _round(max(keeps, default=None)),
        }
        report.passed["kept"] = (
            report.kept["lost"] <= TARGETS["kept_lost"]
            and report.kept["duplicated"] <= TARGETS["kept_duplicated"]
            and report.kept["expected"] > 0
        )
    if settings.keep_timings:
        say(f"timing {settings.keep_timings} keeps into a set of {settings.class_size:,}")
        report.keep_server_ms = time_keeps(settings.keep_timings, settings.class_size)
        report.passed["keep_ms"] = report.keep_server_ms["p95"] <= TARGETS["keep_p95_ms"]
    return report


def kept_in_set(drawings_dir: str, logs: list[SessionLog]) -> tuple[dict[str, int], list[str]]:
    """The class's set read back and compared with the Keeps each session pressed, per
    writer (the session's name) and digit: {"expected", "found", "lost", "duplicated",
    "sessions_keeping"}, and a few examples of what differed."""
    expected = {log.name: Counter(log.kept) for log in logs if log.kept}
    found: dict[str, Counter] = {}
    for drawing in ClassSet(DrawingsFolder(drawings_dir)).read().drawings:
        found.setdefault(drawing.writer, Counter())[drawing.digit] += 1
    lost = duplicated = 0
    examples = []
    for writer in sorted(expected.keys() | found.keys()):
        want, got = expected.get(writer, Counter()), found.get(writer, Counter())
        for digit in range(10):
            if got[digit] < want[digit]:
                lost += want[digit] - got[digit]
                examples.append(f"{writer}: {want[digit]} {digit}s kept, {got[digit]} in the set")
            elif got[digit] > want[digit]:
                duplicated += got[digit] - want[digit]
                examples.append(f"{writer}: {want[digit]} {digit}s kept, {got[digit]} in the set")
    figures = {
        "expected": sum(sum(c.values()) for c in expected.values()),
        "found": sum(sum(c.values()) for c in found.values()),
        "lost": lost,
        "duplicated": duplicated,
        "sessions_keeping": len(expected),
    }
    return figures, examples[:20]


def time_keeps(count: int, class_size: int, seed: int = 0) -> dict[str, float | None]:
    """Milliseconds ``ClassSet.keep`` takes (what the Draw page's Keep costs the server
    beyond its rerun), ``count`` times, into a set already holding ``class_size`` drawings
    kept by 30 browsers over the past hours; each timed keep by one of those browsers, now,
    so that the limits are counted as for a student. p50, p95, max."""
    from mnist_core.training_queue import Requester

    rng = np.random.default_rng(seed)
    examples = []
    for number in range(20):
        strokes = clear_of_toolbar(random_digit(rng, number % 10, brush=BRUSH_SIZE))
        drawing = preprocess_canvas(render(strokes))
        pixels = [(np.asarray(s) * CANVAS_SIZE).tolist() for s in strokes]
        examples.append((number % 10, pixels, drawing.image))
    owners = [Requester(f"{number:016x}") for number in range(30)]
    with tempfile.TemporaryDirectory(prefix="load-keeps-") as folder:
        chosen = ClassSet(DrawingsFolder(folder))
        past = time.time() - 4 * 3600
        for number in range(class_size):
            digit, pixels, image = examples[number % len(examples)]
            owner = owners[number % len(owners)]
            chosen.keep(digit, pixels, image, owner, f"writer-{number % 30}", now=past + number)
        times = []
        for number in range(count):
            digit, pixels, image = examples[number % len(examples)]
            started = time.perf_counter()
            chosen.keep(digit, pixels, image, owners[number % len(owners)], "timed")
            times.append((time.perf_counter() - started) * 1000)
    return {
        "count": count,
        "set_size": class_size,
        "p50": _round(_percentile(times, 0.5), 2),
        "p95": _round(_percentile(times, 0.95), 2),
        "max": _round(max(times), 2),
    }


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(values, share * 100))


def _report(settings, logs, memory, speeds, window) -> LoadReport:
    alone, before, start_sample, end_sample, samples = memory
    first, loaded, last = speeds
    unloaded = statistics.fmean([first, last]) if first and last else None
    drawers = [log for log in logs if log.kind in ("browser", "websocket")]
    latencies = [t for log in drawers for t in log.latencies]
    by_kind = {
        kind: [t for log in drawers if log.kind == kind for t in log.latencies]
        for kind in ("browser", "websocket")
    }
    readings = [r for log in drawers for r in log.readings]
    errors = [e for log in logs for e in log.errors]
    during = [s for s in samples if window[0] - 3 <= s.at <= window[1]] or samples
    notes = {note for log in logs if log.kind == "queuer" for note in log.notes}
    report = LoadReport(
        drawers=settings.drawers,
        real=settings.real,
        websocket=settings.drawers - settings.real,
        queuers=settings.queuers,
        seconds=round(window[1] - window[0], 1),
        errors=len(errors),
        error_examples=errors[:20],
        drawings_shown={kind: len(values) for kind, values in by_kind.items()},
        predictions_per_s=round(2 * len(latencies) / (window[1] - window[0]), 2),
        latency_p50_s=_round(_percentile(latencies, 0.5)),
        latency_p95_s=_round(_percentile(latencies, 0.95)),
        latency_max_s=_round(max(latencies, default=None)),
        latency_p95_by_kind_s={k: _round(_percentile(v, 0.95)) for k, v in by_kind.items()},
        cnn_right_share=_round(
            statistics.fmean(drawn == cnn for drawn, _, cnn in readings) if readings else None
        ),
        server_rss_mb={
            "before_sessions": round(before.server_rss_mb),
            "peak": round(max(s.server_rss_mb for s in during)),
            "end": round(samples[-1].server_rss_mb),
        },
        worker_rss_mb={
            "before_sessions": round(before.worker_rss_mb),
            "peak": round(max(s.worker_rss_mb for s in during)),
        },
        cpu_percent={
            "unloaded": _cpu_percent(alone, before),
            "loaded": _cpu_percent(start_sample, end_sample),
        },
        training_images_per_s={
            "before": _round(first, 0),
            "loaded": _round(loaded, 0),
            "after": _round(last, 0),
            "unloaded": _round(unloaded, 0),
            "ratio": _round(loaded / unloaded if unloaded and loaded else None),
        },
        queue_observations=sorted(notes)[:20],
    )
    report.passed = {
        "drawers": settings.drawers >= TARGETS["drawers"],
        "errors": report.errors <= TARGETS["errors"],
        "p95": report.latency_p95_s is not None and report.latency_p95_s <= TARGETS["p95_s"],
        "server_memory": report.server_rss_mb["peak"] <= TARGETS["server_rss_mb"],
        "training_speed": (report.training_images_per_s["ratio"] or 0) >= TARGETS["speed_ratio"],
    }
    return report


def _cpu_percent(first: Sample, last: Sample) -> dict[str, int]:
    """Each process's CPU between two samples, in % of one core; "machine": all cores."""
    seconds = last.at - first.at
    cpu = {name: (last.cpu_s[name] - first.cpu_s[name]) / seconds for name in last.cpu_s}
    cpu["machine"] = (last.machine_busy_s - first.machine_busy_s) / seconds
    return {name: round(100 * value) for name, value in cpu.items()}


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def print_report(report: LoadReport, say=print) -> None:
    """The figures for people, then one JSON line."""
    say(
        f"\n{report.drawers} drawing sessions ({report.real} real Chromium, "
        f"{report.websocket} websocket), {report.queuers} queuing, {report.seconds:g} s measured"
    )
    say(f"errors: {report.errors}")
    for example in report.error_examples:
        say(f"  {example}")
    say(
        f"drawings with both predictions shown: {report.drawings_shown} "
        f"({report.predictions_per_s:g} predictions/s); CNN right on {report.cnn_right_share}"
    )
    say(
        f"mouse-up to both predictions: p50 {report.latency_p50_s} s, p95 {report.latency_p95_s}"
        f" s, max {report.latency_max_s} s; p95 by kind {report.latency_p95_by_kind_s}"
    )
    say(f"server RSS MB {report.server_rss_mb}; worker RSS MB {report.worker_rss_mb}")
    say(f"CPU, % of one core: {report.cpu_percent}")
    say(f"training images/s {report.training_images_per_s}")
    if report.keeping:
        kept = report.kept
        say(
            f"kept: {kept['expected']} Keeps pressed by {kept['sessions_keeping']} sessions, "
            f"{kept['found']} in the set; lost {kept['lost']}, duplicated {kept['duplicated']}"
        )
        for example in report.kept_examples:
            say(f"  {example}")
        say(f"Keep to the fresh canvas: {report.keep_to_canvas_s} s")
    else:
        say("kept: none (--no-keep: the sessions press Clear)")
    if report.keep_server_ms:
        server = report.keep_server_ms
        say(
            f"ClassSet.keep into a set of {server['set_size']:,}: p50 {server['p50']} ms, "
            f"p95 {server['p95']} ms, max {server['max']} ms ({server['count']} keeps)"
        )
    say("queuing sessions saw:")
    for note in report.queue_observations:
        say(f"  {note}")
    say(f"targets met: {report.passed}")
    say(json.dumps(asdict(report)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--drawers", type=int, default=30, help="drawing sessions (N)")
    parser.add_argument("--real", type=int, default=6, help="of them, real Chromium contexts (R)")
    parser.add_argument("--queuers", type=int, default=2, help="sessions pressing Start (M)")
    parser.add_argument("--seconds", type=float, default=60, help="the loaded measurement")
    parser.add_argument("--unloaded-seconds", type=float, default=30)
    parser.add_argument(
        "--no-keep",
        dest="keep",
        action="store_false",
        help="the drawing sessions press Clear, never Keep (to compare the p95)",
    )
    parser.add_argument(
        "--keep-timings", type=int, default=100, help="ClassSet.keep calls timed after the load"
    )
    parser.add_argument("--port", type=int, default=PORTS[0], choices=PORTS)
    options = parser.parse_args(argv)
    if missing := browser_missing():
        print(f"cannot run: {missing}", file=sys.stderr)
        return 2
    settings = Settings(
        drawers=options.drawers,
        real=min(options.real, options.drawers),
        queuers=options.queuers,
        seconds=options.seconds,
        unloaded_seconds=options.unloaded_seconds,
        keep=options.keep,
        keep_timings=options.keep_timings,
    )
    data = os.environ.get("MNIST_DATA", "/work/shared/mnist/mnist.npz")
    with (
        tempfile.TemporaryDirectory(prefix="load-models-") as models,
        tempfile.TemporaryDirectory(prefix="load-drawings-") as drawings,
    ):
        source = Path(os.environ.get("MNIST_MODELS_DIR", MODELS))
        for path in [*source.glob("*.keras"), *source.glob("*.json")]:
            shutil.copy(path, models)
        env = {"MNIST_DRAWINGS_DIR": drawings}  # the load's own: never the user's drawings
        with running_app(models, data, env=env, port=options.port) as (url, server):
            print(f"serving {url} (pid {server.pid}), models copied from {source}, data {data}")
            report = asyncio.run(measure(url, server.pid, settings, drawings_dir=drawings))
    print_report(report)
    return 0 if all(report.passed.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
