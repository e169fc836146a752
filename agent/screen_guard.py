"""The screen, sampled and judged: regions → model → worst region → smoothed episodes → overlay
(``blur``) or nothing visible (``log``), and one audit row per episode with its start, end and
peak. Nothing about the screen is stored: captures, crops and the blurred copy live in memory.

The interval stretches (×1.5 per sample, up to ``max_interval_s``) while the screen is static or
a sample takes more than half the interval, and snaps back on the first change. After a flagged
sample that has not yet started an episode, the next sample comes after a quarter interval: the
confirmation (k of n) then costs 0.25 s instead of a whole interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agent.actions.overlay import Overlay, OverlayUnavailable, blurred_copy
from agent.audit import AuditLog, AuditRecord
from agent.config import ScreenSection
from agent.corrections import Corrections
from agent.outcome import Outcome, action_name
from agent.picture_hash import grey_glance, phash
from agent.policy import Decision, Profile, Smoother, decide
from agent.sources.screen import Box, RegionTracker, ScreenUnavailable, WindowLister, glance, grab, open_capture, to_model_input

log = logging.getLogger(__name__)

COVER_MARGIN = 0.05  # of the covered area's larger side, at least 16 px: edges and frames stay hidden
WHOLE_COVER_SHARE = 0.5  # a cover over half the monitor covers all of it


def screen_glance(pixels: np.ndarray, box: Box) -> np.ndarray:
    """A region of a BGRA capture as the 32×32 grey glance picture hashes are made of."""
    from PIL import Image

    crop = pixels[box.top : box.top + box.height, box.left : box.left + box.width, 2::-1]
    step = max(1, min(crop.shape[0], crop.shape[1]) // 128)  # block means survive a cheap pre-shrink
    return grey_glance(Image.fromarray(np.ascontiguousarray(crop[::step, ::step])))


def cover_box(flagged: list[Box], whole: Box) -> Box:
    """What to cover for the flagged regions of one sample: the whole monitor when the whole
    screen is flagged, otherwise the rectangle round the flagged windows or pictures plus a margin
    (the whole monitor again when that is most of it)."""
    if not flagged or whole in flagged:
        return whole
    left = min(b.left for b in flagged)
    top = min(b.top for b in flagged)
    right = max(b.left + b.width for b in flagged)
    bottom = max(b.top + b.height for b in flagged)
    margin = max(16, round(COVER_MARGIN * max(right - left, bottom - top)))
    left, top = max(0, left - margin), max(0, top - margin)
    right, bottom = min(whole.width, right + margin), min(whole.height, bottom + margin)
    if (right - left) * (bottom - top) > WHOLE_COVER_SHARE * whole.width * whole.height:
        return whole
    return Box(left, top, right - left, bottom - top)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@dataclass
class Episode:
    started: float
    peak: float = 0.0
    label: str = ""


@dataclass
class _Monitor:
    number: int
    tracker: RegionTracker
    smoother: Smoother
    episode: Episode | None = None
    last: tuple[bool, float, str] = (False, 0.0, "")  # the last judged sample: flagged, worst malign, its label
    overlay_glance: np.ndarray | None = None  # what Veil's own cover looks like, to never judge it
    overlay_telling: np.ndarray | None = None  # where the cover differs from what it covers
    flagged_area: Box | None = None  # the last judged sample's flagged regions, as one rectangle
    covered: Box | None = None  # what the overlay covers now (monitor coordinates)
    whole: Box | None = None  # the whole monitor (monitor coordinates), once sampled


class ScreenGuard:
    def __init__(self, section: ScreenSection, classifier, profile: Callable[[], Profile], audit: AuditLog, model: str,
                 on_outcome: Callable[[Outcome], None] | None = None, paused: Callable[[], bool] = lambda: False,
                 corrections: Corrections | None = None):
        self.section = section
        self.classifier = classifier
        self.profile = profile
        self.audit = audit
        self.model = model
        self.on_outcome = on_outcome or (lambda outcome: None)
        self.paused = paused  # while paused (with the PIN) nothing is sampled and no cover shown
        self.corrections = corrections  # a picture the parent blocked is covered whatever the model says
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._overlay: Overlay | None = None

    def start(self) -> str:
        """Start sampling; returns a short state for the start-up line."""
        try:
            capture = open_capture()
        except ScreenUnavailable as err:
            return f"screen: unavailable ({err})"
        monitors = len(capture.monitors) - 1
        capture.close()
        self._thread = threading.Thread(target=self._run, name="veil-screen", daemon=True)
        self._thread.start()
        return f"screen: {monitors} monitor{'s' if monitors != 1 else ''} every {self.section.interval_s:g} s"

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # -- the sampling thread --------------------------------------------------------------

    def _run(self) -> None:
        capture = open_capture()  # mss objects belong to the thread that made them
        windows = WindowLister()
        monitors = [_Monitor(i, RegionTracker(windows), Smoother(self.section.flag_after, self.section.of_last, self.section.clear_after))
                    for i in range(1, len(capture.monitors))]
        interval = self.section.interval_s
        try:
            while not self._stop.wait(interval):
                if self.paused():
                    for monitor in monitors:
                        if monitor.episode is not None:
                            self._end_episode(monitor, "paused")
                    interval = self.section.interval_s
                    continue
                began = time.monotonic()
                changed = False
                for monitor in monitors:
                    try:
                        changed |= self._sample(capture, monitor)
                    except Exception:  # one bad sample must not end screen protection
                        log.exception("screen sample failed on monitor %d", monitor.number)
                took = time.monotonic() - began
                slow = took > interval / 2
                interval = self.section.interval_s if changed and not slow else min(self.section.max_interval_s, interval * 1.5)
                if any(m.covered is not None and m.covered != m.whole for m in monitors):
                    # a cover over one window: a window dragged from under it must not stay bare for a stretched interval
                    interval = min(interval, self.section.interval_s)
                if any(m.smoother.pending for m in monitors):
                    interval = self.section.interval_s / 4
        finally:
            for monitor in monitors:
                if monitor.episode is not None:
                    self._end_episode(monitor, "agent stopped")
            if self._overlay is not None:
                self._overlay.stop()
            windows.close()
            capture.close()

    def _grab_under(self, capture, monitor: _Monitor):
        """A capture of what is under the overlay, or None if the windows there have not yet
        repainted. Without a compositor, the pixels of a just-withdrawn overlay stay on screen
        until the windows under it repaint: a capture that still looks like Veil's own blurred
        picture is retried briefly, and otherwise not used (the last decision stands)."""
        for _ in range(6):
            shot = grab(capture, monitor.number)
            own, telling = monitor.overlay_glance, monitor.overlay_telling
            look = glance(shot.pixels).astype(np.int16)
            if own is None or telling is None or own.shape != look.shape or not telling.any():
                return shot
            # judged only where the cover differs from what it covered (on a black desktop the
            # blur of black is black: those pixels tell nothing)
            same = np.all(np.abs(look - own) < 10, axis=2)[telling].mean()
            if same < 0.5:
                return shot
            time.sleep(0.04)
        return None

    def _sample(self, capture, monitor: _Monitor) -> bool:
        """One sample of one monitor; True if the screen had changed."""
        overlay = self._overlay
        if overlay is not None and monitor.number in overlay.shown:
            shot = overlay.hide_for_sampling(monitor.number, lambda: self._grab_under(capture, monitor))
            if shot is None:
                return False
        else:
            shot = grab(capture, monitor.number)
        regions = monitor.tracker.regions(shot)
        profile = self.profile()
        if regions is None:
            # static: the content, so the decision, is what it was; no inference
            self._advance(monitor, shot, profile)
            return False
        batch = np.stack([to_model_input(shot.pixels, box) for box in regions])
        scores = self.classifier.classify(batch)
        decisions = [decide(s, profile) for s in scores]
        labels = [s.top for s in scores]
        if self.corrections:
            self._blocked_pictures(shot, regions, decisions, labels, profile)
        worst = max(range(len(decisions)), key=lambda i: (decisions[i].flagged, decisions[i].malign))
        flagged = [box for box, decision in zip(regions, decisions) if decision.flagged]
        for box in flagged:
            if box != regions[0]:
                monitor.tracker.flagged(box)
        monitor.whole = regions[0]
        # a flagged area that changed inside a window may be only part of its picture: the whole window is covered
        enclosing = [min((w for w in monitor.tracker.windows if w.contains(box)), key=lambda w: w.width * w.height, default=box)
                     if box != regions[0] else box for box in flagged]
        monitor.flagged_area = cover_box(enclosing, regions[0]) if flagged else None
        monitor.last = (decisions[worst].flagged, decisions[worst].malign, labels[worst])
        log.debug("screen %d: %d regions, worst %.3f (%s) in %s", monitor.number, len(regions), decisions[worst].malign,
                  labels[worst], regions[worst])
        self._advance(monitor, shot, profile)
        return True

    def _blocked_pictures(self, shot, regions: list[Box], decisions: list, labels: list[str], profile: Profile) -> None:
        """A region that shows a picture the parent blocked is flagged (its own perceptual hash
        near a correction's: a picture shown scaled in a window is a resized copy of it)."""
        assert self.corrections is not None
        for i, box in enumerate(regions):
            if decisions[i].flagged:
                continue
            match = self.corrections.match(phash(screen_glance(shot.pixels, box)))
            if match is not None and match.correction.kind == "block":
                decisions[i] = Decision("malign", decisions[i].malign, profile.name)
                labels[i] = f"blocked by the parent's correction #{match.correction.number}"

    def _advance(self, monitor: _Monitor, shot, profile: Profile) -> None:
        """Feed the last judged sample to the smoother; start or end an episode on its word."""
        flagged, malign, label = monitor.last
        change = monitor.smoother.update(flagged)
        if monitor.episode is not None and flagged and malign >= monitor.episode.peak:  # what the episode is about
            monitor.episode.peak, monitor.episode.label = malign, label
        if change == "start":
            monitor.episode = Episode(time.time(), malign, label)
            self._act_start(monitor, monitor.episode, shot, profile)
        elif change == "end":
            self._end_episode(monitor, "content gone")
        elif monitor.covered is not None and flagged and monitor.flagged_area is not None:
            self._follow(monitor, shot, profile)

    def _act_start(self, monitor: _Monitor, episode: Episode, shot, profile: Profile) -> None:
        action = action_name(profile.actions.get("screen", "blur"), f"profiles.{profile.name}.actions.screen")
        self.on_outcome(Outcome(f"screen:{monitor.number}", "malign", action, f"flagged ({episode.label} {episode.peak:.2f})", "screen"))
        if action != "blur":
            return
        whole = Box(0, 0, shot.bounds.width, shot.bounds.height)
        self._cover(monitor, shot, monitor.flagged_area or whole, profile)

    def _follow(self, monitor: _Monitor, shot, profile: Profile) -> None:
        """The flagged picture is no longer inside the cover (its window was moved or grew): the
        whole monitor is covered until the episode ends. Following the window instead would leave
        the picture bare for one sample at each move, which a child dragging it would exploit."""
        area, covered = monitor.flagged_area, monitor.covered
        assert area is not None and covered is not None
        if not covered.contains(area):
            log.info("screen %d: the flagged picture moved out of its cover; covering the whole monitor", monitor.number)
            self._cover(monitor, shot, Box(0, 0, shot.bounds.width, shot.bounds.height), profile)

    def _cover(self, monitor: _Monitor, shot, box: Box, profile: Profile) -> None:
        """Show the overlay over ``box`` (monitor coordinates): a blurred copy of what is there."""
        try:
            if self._overlay is None:
                self._overlay = Overlay()
                self._overlay.start()
            pixels = shot.pixels
            under = pixels[box.top : box.top + box.height, box.left : box.left + box.width]
            cover = blurred_copy(under)
            # what the screen looks like with the cover on, to never judge Veil's own picture
            seen = pixels.copy()
            seen[box.top : box.top + box.height, box.left : box.left + box.width, 2::-1] = np.asarray(cover)
            monitor.overlay_glance = glance(seen).astype(np.int16)
            monitor.overlay_telling = np.any(np.abs(glance(pixels).astype(np.int16) - monitor.overlay_glance) > 24, axis=2)
            at = Box(shot.bounds.left + box.left, shot.bounds.top + box.top, box.width, box.height)
            what = "screen" if (box.width, box.height) == (shot.bounds.width, shot.bounds.height) else "picture"
            self._overlay.show(monitor.number, at, cover, f"Veil has covered this {what} ({profile.name} profile)")
            monitor.covered = box
        except OverlayUnavailable as err:
            self._overlay = None
            log.warning("screen %d: cannot blur: %s", monitor.number, err)

    def _end_episode(self, monitor: _Monitor, why: str) -> None:
        episode, monitor.episode = monitor.episode, None
        if episode is None:
            return
        monitor.tracker.clear_flagged()
        profile = self.profile()
        action = profile.actions.get("screen", "blur")
        if self._overlay is not None and monitor.number in self._overlay.shown:
            self._overlay.hide(monitor.number)
        monitor.overlay_glance = monitor.overlay_telling = None
        monitor.covered = None
        self.on_outcome(Outcome(f"screen:{monitor.number}", "benign", "none", f"clear; {why}", "screen"))
        if action == "none":
            return  # the profile asks for nothing, not even a row
        ended = time.time()
        self.audit.append(AuditRecord(
            "screen", f"screen:{monitor.number}", decision="malign", action=action,
            detail=f"episode {_iso(episode.started)} to {_iso(ended)} ({ended - episode.started:.1f} s), peak {episode.peak:.2f} "
                   f"({episode.label}); ended: {why}",
            profile=profile.name, model=self.model, malign=f"{episode.peak:.4f}", threshold=f"{profile.threshold:.2f}"))
