"""Progress of a Cosmos-Transfer2.5 run: downloads, model set-up, samples, chunks, steps.

Lines and bars (docs/cosmos.md, "Transfer2.5 contract"; upstream commit 2ff49d07):

- downloads: ``Downloading checkpoint <name>`` (checkpoint_db.py:297), the ``hf download``
  command (checkpoint_db.py:165) and the Hugging Face CLI's own bars;
- set-up: ``Saved config to <dir>/config.yaml`` once the model is built (inference.py:156);
- samples: ``Generating N samples`` (inference.py:163), ``[i/N] Processing sample <name>``
  (:167), the prompt and video guardrail checks (:213, :319), ``Generated video saved to``
  (:343) or ``Guardrail blocked generation`` (:216);
- chunks: ``Generating chunk i/N`` (inference_pipeline.py:554), which the console shows
  only with COSMOS_VERBOSE (cosmos_oss/init.py:45-73 hides ``_src`` modules' INFO lines);
  without it each chunk is one ``Generating samples`` bar
  (vid2vid_model_control_vace_rectified_flow.py:428), counted against the chunk count the
  launch computed (``chunks_per_sample``). Every rank draws that bar in lockstep.
"""

from __future__ import annotations

import re

from cosmos_tui.domain import Progress

SETUP_SHARE = 0.15
MAX_RUNNING_PERCENT = 99.0
DOWNLOAD_PHASE = "downloading checkpoints"
_BAR = re.compile(
    r"^\s*(?:(?P<desc>[^|]*?):\s*)?(?P<pct>\d{1,3})%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+)"
    r"(?:\s*\[(?P<elapsed>[\d:]+)<(?P<remaining>[\d:?]+))?"
)
# A sampling bar cut short (by the terminal's width or a pasted excerpt): percent only.
_CUT_BAR = re.compile(r"^\s*Generating samples:\s*(\d{1,3})%\|")
_DOWNLOAD = re.compile(
    r"Downloading checkpoint |\bhf\S*'? download \S|^\s*(?:Downloading|Fetching) \S"
)
_SIDE_DESC = re.compile(r"(?i)download|fetch|files|\.(?:pt|pth|safetensors|bin|json|jit)\b")
_SAMPLES = re.compile(r"Generating (\d+) samples")
_SECTION = re.compile(r"\[(\d+)/(\d+)\] Processing sample")
_CHUNK = re.compile(r"Generating chunk (\d+)/(\d+)")
# (marker, stage, fraction of a sample done when it shows)
_STAGES: tuple[tuple[str, str, float], ...] = (
    ("Running guardrail check on prompt", "checking prompt (guardrail)", 0.01),
    ("Processing the following paths", "preparing inputs", 0.02),
    ("Running guardrail check on video", "checking video (guardrail)", 0.95),
    ("Generated video saved to", "saved", 1.0),
    ("Guardrail blocked generation", "blocked by the guardrail", 1.0),
)
_GEN_START, _GEN_SHARE = 0.05, 0.90


def _clock(text: str | None) -> float | None:
    if not text or "?" in text:
        return None
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


class Transfer25Parser:
    """Phase, percent and ETA of a Transfer2.5 run (one process, one or more samples).

    Args:
        chunks_per_sample: Chunks each sample generates, when the launch knows it
            (:func:`~cosmos_tui.engine.profiles.transfer25_args.chunk_count`).
    """

    def __init__(self, chunks_per_sample: int | None = None) -> None:
        self.expected_chunks = chunks_per_sample
        self.setup_phase = "starting"
        self.setup_fraction = 0.0
        self.downloading = False
        self.samples_total: int | None = None
        self.sample = 0
        self.stage = ""
        self.stage_fraction = 0.0
        self.chunk_line: tuple[int, int] | None = None
        self.bars_done = 0
        self.bar_fraction = 0.0
        self.remaining: float | None = None
        self._last_n: int | None = None

    def feed(self, line: str, now: float) -> bool:
        """Take one clean log line; return True when the phase or percent moved."""
        bar = _BAR.match(line)
        if bar is not None:
            return self._bar(bar)
        if (cut := _CUT_BAR.match(line)) is not None:
            self._ensure_sample()
            self.stage, self.stage_fraction = "generating", _GEN_START
            self.bar_fraction = min(99, int(cut.group(1))) / 100
            return True
        if _DOWNLOAD.search(line):
            self.downloading = True
            return True
        if "Saved config to" in line:
            self.downloading, self.setup_phase, self.setup_fraction = False, "loaded", 1.0
            return True
        if (samples := _SAMPLES.search(line)) is not None:
            self.samples_total = max(1, int(samples.group(1)))
            self.downloading, self.setup_fraction = False, 1.0
            return True
        if (section := _SECTION.search(line)) is not None:
            self._start_sample(int(section.group(1)), int(section.group(2)))
            return True
        if (chunk := _CHUNK.search(line)) is not None:
            self._ensure_sample()
            self.chunk_line = (int(chunk.group(1)), max(1, int(chunk.group(2))))
            self.bar_fraction, self._last_n, self.bars_done = 0.0, None, 0
            self.stage, self.stage_fraction = "generating", _GEN_START
            return True
        for marker, stage, fraction in _STAGES:
            if marker in line:
                self._ensure_sample()
                self.stage, self.stage_fraction = stage, fraction
                return True
        if self.downloading and self.sample == 0 and "|INFO|" in line:
            self.downloading, self.setup_phase = False, "loading models"
            self.setup_fraction = max(self.setup_fraction, 0.3)
            return True
        return False

    def _bar(self, bar: re.Match[str]) -> bool:
        desc = (bar.group("desc") or "").strip()
        if desc and _SIDE_DESC.search(desc):
            if re.search(r"(?i)download|fetch", desc) or self.sample == 0:
                self.downloading = True
            return True  # a side bar names the activity but never moves the percent
        self._ensure_sample()
        n, total = int(bar.group("n")), max(1, int(bar.group("total")))
        if n >= total and (self._last_n is None or self._last_n < total):
            self.bars_done += 1
        self._last_n = n
        self.bar_fraction = 0.0 if n >= total else n / total
        self.stage, self.stage_fraction = "generating", _GEN_START
        self.remaining = _clock(bar.group("remaining"))
        return True

    def _ensure_sample(self) -> None:
        if self.sample == 0:
            self._start_sample(1, self.samples_total or 1)

    def _start_sample(self, index: int, total: int) -> None:
        self.sample, self.samples_total = index, max(1, total)
        self.downloading, self.setup_fraction = False, 1.0
        self.stage, self.stage_fraction = "preparing inputs", 0.0
        self.chunk_line, self.bars_done, self.bar_fraction = None, 0, 0.0
        self._last_n, self.remaining = None, None

    def _chunks(self) -> tuple[int, int]:
        """Return (chunks done, chunks in this sample)."""
        if self.chunk_line is not None:
            index, count = self.chunk_line
            done = index - 1 + (1 if self.bars_done and self.bar_fraction == 0.0 else 0)
            return min(done, count), count
        count = max(self.expected_chunks or 1, self.bars_done + (1 if self.bar_fraction else 0))
        return min(self.bars_done, count), count

    def estimate(self, now: float, expected_total: float | None) -> Progress:
        """Return the phase, percent and (from the bar, for one chunk) the ETA."""
        if self.sample == 0:
            phase = DOWNLOAD_PHASE if self.downloading else self.setup_phase
            return Progress(phase, 100.0 * SETUP_SHARE * self.setup_fraction, None)
        total = self.samples_total or 1
        done, count = self._chunks()
        within = self.stage_fraction
        stage = self.stage
        if stage == "generating":
            within = _GEN_START + _GEN_SHARE * min(1.0, (done + self.bar_fraction) / count)
            if count > 1:
                stage = f"generating chunk {min(done + 1, count)}/{count}"
        overall = SETUP_SHARE + (1 - SETUP_SHARE) * ((self.sample - 1) + within) / total
        phase = f"sample {self.sample}/{total} {stage}" if total > 1 else stage
        eta = self.remaining if total == 1 and count == 1 and stage == "generating" else None
        return Progress(phase, min(MAX_RUNNING_PERCENT, 100.0 * overall), eta)
