"""Progress of a running run: log lines in, (phase, percent, ETA) out.

Each model profile has a parser. Cosmos-Transfer1 prints no per-step progress, so its
parser follows the phase sequence of COSMOS.md section 5 and gives each phase a weight
(a share of a typical run's time). Inside a silent phase (diffusion sampling can be
quiet for minutes) the percentage advances with time when earlier runs of the same
profile and parameters tell how long a run takes; without history it waits for the
next log line. Profiles that print tqdm bars (Transfer2.5, Predict2) are read from
their bars directly.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cosmos_tui.domain import Progress
from cosmos_tui.engine.profiles.transfer25_progress import Transfer25Parser

MAX_RUNNING_PERCENT = 99.0
_TIME_FILL_CAP = 0.95


class ProgressParser(Protocol):
    """Turns a profile's log lines into a phase and a 0..1 completion."""

    def feed(self, line: str, now: float) -> bool:
        """Take one clean log line seen at ``now``; return True when progress moved."""
        ...

    def estimate(self, now: float, expected_total: float | None) -> Progress:
        """Return the progress at ``now`` given a typical total duration, if known."""
        ...


@dataclass(frozen=True)
class PhaseSpec:
    """One phase of a profile's run.

    Attributes:
        name: Shown to users.
        weight: Share of a typical run's time (relative to the other phases).
        markers: Log substrings that move into this phase, each with the completion
            (0..1) of the phase it implies.

    """

    name: str
    weight: float
    markers: tuple[tuple[str, float], ...]


# Markers and the upstream lines they come from: docs/cosmos.md, "Transfer1 log phases
# and failures". Older wordings (``Run guardrail on prompt``...) are kept beside new ones.
TRANSFER1_PHASES: tuple[PhaseSpec, ...] = (
    PhaseSpec(
        "starting",
        2,
        (("control_inputs:", 0.2), ("final args:", 0.5), ("Using random seed", 0.9)),
    ),
    PhaseSpec(
        "loading models",
        14,
        (
            ("Start creating base model", 0.0),
            ("Loading base model checkpoint", 0.2),
            ("Loading distilled consolidated checkpoint", 0.2),
            ("Done loading the base model checkpoint", 0.4),
            ("Done creating base model", 0.5),
            ("Start creating ctrlnet model", 0.55),
            ("Done creating ctrlnet model", 0.65),
            ("Loading ctrl model from ckpt_path", 0.8),
            ("Enabling CP in base model", 0.95),
        ),
    ),
    PhaseSpec(
        "preprocessing",
        10,
        (("running preprocessor", 0.0), ("no input_control provided for", 0.2)),
    ),
    PhaseSpec(
        "guardrail",
        2,
        (
            ("Running guardrail checks on all prompts", 0.0),
            ("Run guardrail on prompt", 0.0),
            ("Pass guardrail on prompt", 1.0),
        ),
    ),
    PhaseSpec(
        "text embedding",
        4,
        (
            ("Running text embedding on all prompts", 0.0),
            ("Run text embedding on prompt", 0.0),
            ("Starting T5 compute", 0.1),
            ("Completed T5 compute", 1.0),
            ("Finish text embedding on prompt", 1.0),
        ),
    ),
    PhaseSpec(
        "preparing",
        2,
        (
            ("Run generation", 0.0),
            ("Starting data augmentation", 0.1),
            ("reading control input", 0.4),
            ("Making all control and input videos", 0.6),
            ("Completed data augmentation", 1.0),
        ),
    ),
    PhaseSpec("generating", 62, ()),  # driven by clips, see Transfer1Parser
    PhaseSpec(
        "saving",
        4,
        (
            ("Finish generation", 0.0),
            ("Run guardrail on generated video", 0.3),
            ("Pass guardrail on generated video", 0.6),
            ("Saved video to", 0.8),
            ("Saved prompt to", 1.0),
        ),
    ),
)

# Steps of one 121-frame clip inside "generating", with the clip completion each implies.
_CLIP_STEPS: tuple[tuple[str, float], ...] = (
    ("Starting latent encoding", 0.0),
    ("Completed latent encoding", 0.03),
    ("Starting diffusion sampling", 0.05),
    ("Completed diffusion sampling", 0.9),
    ("Starting VAE decode", 0.9),
    ("Completed VAE decode", 1.0),
)
# Side activity: checkpoint downloads (download_checkpoints.py prints "Downloading X",
# huggingface_hub shows "Fetching N files" and per-file bars) and shard loading. They name
# what the run is doing but never move the overall percent.
SIDE_BAR = re.compile(
    r"(?i)download|fetch|shard|loading|\.(?:safetensors|bin|pt|pth|ckpt|json|model)\b|files"
)
_DOWNLOADING = re.compile(r"^\s*(?:Downloading|Fetching) \S|^\s*Downloading:")
DOWNLOAD_PHASE = "downloading checkpoints"
_CLIP_BAR = re.compile(r"^\s*(\d+)%\|[^|]*\|\s*(\d+)/(\d+)\b[^\]]*\]?")
_SIDE_BAR_LINE = re.compile(r"^[^|]*?:?\s*\d{1,3}%\|")


class Transfer1Parser:
    """Phase-based progress of Cosmos-Transfer1 (no per-step output)."""

    def __init__(self, phases: Sequence[PhaseSpec] = TRANSFER1_PHASES) -> None:
        self.phases = tuple(phases)
        total = sum(p.weight for p in self.phases)
        self._shares = [p.weight / total for p in self.phases]
        self._generating = next(i for i, p in enumerate(self.phases) if p.name == "generating")
        self.phase_index = 0
        self.fraction = 0.0
        self.phase_started: float | None = None
        self.clips_total: int | None = None
        self.clips_done = 0
        self.clip_fraction = 0.0
        self.side: str | None = None
        markers = [m for p in self.phases for m, _ in p.markers] + [s for s, _ in _CLIP_STEPS]
        self._any_marker = re.compile("|".join(re.escape(m) for m in markers))

    def feed(self, line: str, now: float) -> bool:
        """Move through phases on marker lines; count clips inside generation.

        A bar shares its line with a marker when tqdm redrew without a newline; the bar
        is read and the rest of the line is still looked at.
        """
        if self.phase_started is None:
            self.phase_started = now
        if "%|" in line:
            bar = _CLIP_BAR.match(line)
            if bar is not None:
                self.clips_total = max(1, int(bar.group(3)))
                line = line[bar.end() :]
            elif _SIDE_BAR_LINE.match(line) and SIDE_BAR.search(line.split("%|")[0]):
                if _DOWNLOADING.search(line) or "download" in line.lower():
                    self.side = DOWNLOAD_PHASE
                return False
        if _DOWNLOADING.search(line):
            self.side = DOWNLOAD_PHASE
            return True
        if self._any_marker.search(line) is None:
            return False
        self.side = None
        for step, value in _CLIP_STEPS:
            if step in line:
                self._enter(self._generating, now)
                if value >= 1.0:
                    self.clips_done += 1
                    self.clip_fraction = 0.0
                else:
                    self.clip_fraction = value
                self.fraction = self._clip_progress()
                return True
        for index, phase in enumerate(self.phases):
            for marker, value in phase.markers:
                if marker in line and index >= self.phase_index:
                    self._enter(index, now)
                    self.fraction = max(self.fraction, value)
                    return True
        return False

    def _enter(self, index: int, now: float) -> None:
        if index != self.phase_index:
            self.phase_index = index
            self.fraction = 0.0
            self.phase_started = now

    def _clip_progress(self) -> float:
        total = max(self.clips_total or 1, self.clips_done + (1 if self.clip_fraction else 0), 1)
        return min(1.0, (self.clips_done + self.clip_fraction) / total)

    def estimate(self, now: float, expected_total: float | None) -> Progress:
        """Combine the phase reached with the time spent in it."""
        share = self._shares[self.phase_index]
        done = sum(self._shares[: self.phase_index])
        fraction = self.fraction
        if expected_total and self.phase_started is not None:
            expected_phase = expected_total * share
            if self.phase_index == self._generating:
                expected_phase /= max(1, self.clips_total or 1)
                in_clip = (now - self.phase_started) / expected_phase if expected_phase else 0.0
                in_clip = min(_TIME_FILL_CAP, max(self.clip_fraction, in_clip))
                total = max(1, self.clips_total or 1)
                fraction = max(fraction, min(1.0, (self.clips_done + in_clip) / total))
            elif expected_phase > 0:
                timed = (now - self.phase_started) / expected_phase
                fraction = max(fraction, min(_TIME_FILL_CAP, timed))
        percent = min(MAX_RUNNING_PERCENT, 100.0 * (done + share * fraction))
        name = self.side or self.phases[self.phase_index].name
        if (
            self.side is None
            and self.phase_index == self._generating
            and (self.clips_total or 0) > 1
        ):
            name = f"generating clip {min(self.clips_done + 1, self.clips_total or 1)}/"
            name += str(self.clips_total)
        return Progress(phase=name, percent=percent, eta_seconds=None)


_TQDM = re.compile(
    r"^(?:(?P<desc>[^|]*?):\s*)?(?P<pct>\d{1,3})%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+)"
    r"(?:\s*\[(?P<elapsed>[\d:]+)<(?P<remaining>[\d:?]+))?"
)
_CHUNK = re.compile(r"Generating chunk (\d+)/(\d+)")


def parse_clock(text: str) -> float | None:
    """Parse tqdm's ``MM:SS`` or ``H:MM:SS`` into seconds (None for ``?``)."""
    if not text or "?" in text:
        return None
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


class TqdmParser:
    """Progress of profiles that print tqdm bars (and optional ``Generating chunk i/N``)."""

    def __init__(self, default_phase: str = "generating") -> None:
        self.phase = "starting"
        self.default_phase = default_phase
        self.fraction = 0.0
        self.remaining: float | None = None
        self.chunk: tuple[int, int] | None = None

    def feed(self, line: str, now: float) -> bool:
        """Read a bar or a chunk line."""
        chunk = _CHUNK.search(line)
        if chunk is not None:
            self.chunk = (int(chunk.group(1)), max(1, int(chunk.group(2))))
            self.fraction = 0.0
            return True
        bar = _TQDM.match(line.strip())
        if bar is None:
            if _DOWNLOADING.search(line):
                self.phase = DOWNLOAD_PHASE
                return True
            return False
        desc = (bar.group("desc") or "").strip()
        if desc and SIDE_BAR.search(desc):
            self.phase = DOWNLOAD_PHASE if re.search(r"(?i)download|fetch", desc) else desc
            return True  # a side bar names the activity but never moves the percent
        total = max(1, int(bar.group("total")))
        self.fraction = min(1.0, int(bar.group("n")) / total)
        self.phase = (bar.group("desc") or "").strip() or self.default_phase
        self.remaining = parse_clock(bar.group("remaining") or "")
        return True

    def estimate(self, now: float, expected_total: float | None) -> Progress:
        """Percent of the bar (within the current chunk, when chunked)."""
        overall = self.fraction
        phase = self.phase
        if self.chunk is not None:
            index, count = self.chunk
            overall = ((index - 1) + self.fraction) / count
            phase = f"{phase} chunk {index}/{count}"
        percent = min(MAX_RUNNING_PERCENT, 100.0 * overall)
        eta = self.remaining if self.chunk is None else None
        return Progress(phase=phase, percent=percent, eta_seconds=eta)


def _cosmos3_parser() -> ProgressParser:
    # lazy: profiles.cosmos3 (~13 ms) is for Cosmos 3 logs; 'cosmos diagnose' imports this
    from cosmos_tui.engine.profiles.cosmos3 import Cosmos3Parser

    return Cosmos3Parser()


PARSERS: dict[str, Callable[[], ProgressParser]] = {
    "transfer1": Transfer1Parser,
    "cosmos3": _cosmos3_parser,
    "transfer2.5": Transfer25Parser,
    "predict2": TqdmParser,
}


def parser_for(profile: str) -> ProgressParser:
    """Return a fresh parser for a profile (tqdm bars for unknown profiles)."""
    factory = PARSERS.get(profile, TqdmParser)
    return factory()


def expected_duration(durations: Iterable[float]) -> float | None:
    """Return the typical duration of earlier runs (the median), or None without any."""
    values = [d for d in durations if d > 0]
    return statistics.median(values) if values else None


class ProgressTracker:
    """Progress and ETA of one run, from its log lines and earlier runs' durations.

    Args:
        parser: The profile's parser.
        started_at: When the container started (seconds on the same clock as ``now``).
        expected_total: Typical duration of this profile and these parameters, if known.

    """

    def __init__(
        self, parser: ProgressParser, started_at: float, expected_total: float | None
    ) -> None:
        self.parser = parser
        self.started_at = started_at
        self.expected_total = expected_total

    def feed(self, lines: Iterable[str], now: float) -> bool:
        """Feed clean log lines; return True when the phase or percent moved."""
        moved = False
        for line in lines:
            moved = self.parser.feed(line, now) or moved
        return moved

    def snapshot(self, now: float) -> Progress:
        """Return the current progress with an ETA.

        The ETA comes from the parser when it reads one (tqdm), else from the typical
        duration, else from extrapolating the elapsed time once past 5 percent.
        """
        progress = self.parser.estimate(now, self.expected_total)
        if progress.eta_seconds is not None:
            return progress
        elapsed = max(0.0, now - self.started_at)
        left = 1.0 - progress.percent / 100.0
        eta: float | None = None
        if self.expected_total:
            eta = max(self.expected_total - elapsed, self.expected_total * left * 0.1, 0.0)
        elif progress.percent >= 5.0:
            eta = elapsed * left / (progress.percent / 100.0)
        return Progress(progress.phase, progress.percent, eta)
