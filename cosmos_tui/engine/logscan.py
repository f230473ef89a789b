"""One pass over a Cosmos log that keeps only what a diagnosis needs.

The scanner reads clean log lines one at a time (a run's lines as they arrive, or a
multi-gigabyte file from ``cosmos diagnose``) and keeps bounded state: the first
exception lines of the workers (with their rank and the lines around them), the
guardrail verdicts, GPU-support warnings, download refusals, host kills, the last
lines, and the last phase each rank reached (read by the profile's own progress
parser). :mod:`cosmos_tui.engine.failures` turns that state into a verdict.

What counts as the cause (docs/cosmos.md, "Transfer1 log phases and failures"):

- ``[rankN]:`` prefixes (torch.distributed) are stripped and the rank remembered.
- A worker's exception line is ``Type: message`` where Type ends in Error or Exception,
  even when the traceback header above it was cut from the excerpt.
- torchrun's ``ChildFailedError`` footer, ``Traceback (most recent call last)`` and the
  exceptions that only re-raise another (``RuntimeError: ... failed: 401 ...``) wrap the
  cause and are never chosen over the first real exception.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from cosmos_tui.engine.profiles import cosmos3_failures
from cosmos_tui.engine.progress import ProgressParser, parser_for

CONTEXT_BEFORE = 5
CONTEXT_AFTER = 10
MAX_FOUND = 12
MAX_LINE = 400

_RANK = re.compile(r"^\s*\[(?:rank|RANK)\s*(\d+)\]\s*:\s?")
_EXCEPTION = re.compile(
    r"(?:^|(?<=[\s>(]))(?P<type>(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception))"
    r"(?::\s?(?P<msg>.*)|\s*$)"
)
_WRAPPERS = re.compile(
    r"ChildFailedError|^torch\.distributed\.elastic|RendezvousClosedError"
    r"|SignalException"
)
TRACEBACK = re.compile(
    r"Traceback\b[^(]*\(most recent call last\)|An error has been caught in function"
)
_GUARDRAIL_REASON = re.compile(r"GUARDRAIL BLOCKED:\s*(?P<reason>.*)")
GUARDRAIL_VERDICT = re.compile(
    r"All prompts failed safety checks|All generated videos failed safety checks"
    r"|Guardrail blocked generation for entire batch|Input text prompt(?: \d+)? is not safe"
    r"|Generated video(?: \d+)? is not safe"
    r"|Guardrail blocked (?:generation\. (?:Prompt|Negative prompt)|video2world generation)"
    # Cosmos 3's text and video guardrails (cosmos_framework/inference/common/inference.py:
    # 280, 289), for a generated video and for the reasoner's prompt and answer alike
    r"|Guardrail blocked (?:prompt|video) '"
)
_GPU_SUPPORT = re.compile(
    r"PyTorch no longer supports this GPU because it is too old"
    r"|is not compatible with the current PyTorch installation"
    r"|no kernel image is available for execution on the device"
    r"|FlashAttention only supports Ampere GPUs or newer"
    r"|[Bb]float16 is only supported on GPUs with compute capability"
)
# A kernel that did not run on this GPU, so what it computed is wrong: Cosmos3-Nano on an
# ARM64 GB300 exits 0 with a grey image after the CUTLASS line (cosmos-framework#42).
# Unlike PyTorch's capability warnings (one is printed wrongly on sm_121 GPUs whose
# kernels run fine), these make a completed run's outputs suspect.
CUTLASS_FAILED = "Failed to initialize the CUTLASS kernel"  # a warning, not an exception
KERNEL_FAILED = re.compile(
    re.escape(CUTLASS_FAILED) + r"|no kernel image is available for execution on the device"
)


def kernel_failure(lines: Iterable[str]) -> tuple[str, int] | None:
    """Return the first line saying a kernel did not run, and where in it that is said."""
    for line in lines:
        found = KERNEL_FAILED.search(line)
        if found is not None:
            return line, found.start()
    return None


_ACCESS = re.compile(
    r"Cannot access gated repo|Access to model \S+ is restricted"
    r"|\b40[13] (?:Client Error|Forbidden)|<Code>AccessDenied</Code>"
    r"|Repository Not Found for url|You must have access to it"
)
_HOST_KILL = re.compile(r"exitcode\s*:\s*-9\b|Signal 9 \(SIGKILL\)|(?:^|\]|\s)Killed\s*$")
_ARGPARSE = re.compile(
    r"^\S+: error: (?:argument |unrecognized arguments|the following arguments are required)"
)
_DOWNLOADING = re.compile(r"^\s*(?:Downloading|Fetching) \S")
# Transfer2.5 (docs/cosmos.md, "Transfer2.5 contract"): a sample pydantic refuses
# (config.py:375-378), a bad command-line override (config.py:97-103), a duplicate name or
# no samples (config.py:389-414), and tyro's own refusals of the command line.
SPEC_VALIDATION = re.compile(
    r"Error validating parameters from '[^']*' at line \d+|^\d+ validation errors? for \w+"
    r"|^Error: (?:Inference samplename \S+ is not unique|No inference (?:samples|parameter files))"
    r"|Unrecognized (?:options|arguments): \S|The following arguments are required: \S"
    r"|\bArgument -{1,2}[\w-]+: |\bError parsing -{1,2}[\w-]+: "
)
NCCL = re.compile(
    r"NCCL error|nccl(?:UnhandledCuda|System|Internal|Remote|InvalidUsage)Error"
    r"|Watchdog caught collective operation timeout|Signal 11 \(SIGSEGV\)"
    r"|exitcode\s*:\s*-11\b|Segmentation fault"
)
_WARNING = re.compile(r"\|(?:WARNING|CRITICAL)\|| WARNING | UserWarning|^\s*warnings\.warn")


def split_rank(line: str) -> tuple[int | None, str]:
    """Return the ``[rankN]:`` rank of a line (None without one) and the line without it."""
    match = _RANK.match(line)
    if match is None:
        return None, line
    return int(match.group(1)), line[match.end() :]


def exception_in(text: str) -> tuple[str, str] | None:
    """Return ``(type, message)`` when ``text`` is an exception line (not a wrapper)."""
    match = _EXCEPTION.search(text)
    if match is None or _WRAPPERS.search(match.group("type")):
        return None
    return match.group("type"), (match.group("msg") or "").strip()


@dataclass
class Found:
    """One line the diagnosis may point at.

    Attributes:
        index: 0-based line number in the log.
        rank: The worker rank that printed it, when prefixed.
        text: The line without its rank prefix.
        context: The lines around it (a few before, up to ten after, filled as read).

    """

    index: int
    rank: int | None
    text: str
    context: list[str] = field(default_factory=list)
    after: int = 0


@dataclass
class Caught:
    """An exception line of a worker."""

    found: Found
    type: str
    message: str


def family_signatures(profile: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Return the log signatures a model family adds to the shared ones."""
    if profile == "cosmos3":
        return cosmos3_failures.SIGNATURES
    return ()


class LogScanner:
    """Reads clean log lines and keeps the evidence of why a run ended.

    Args:
        profile: The model family, whose progress parser names the phases.

    """

    def __init__(self, profile: str = "transfer1") -> None:
        self.profile = profile
        self.lines = 0
        self.exceptions: list[Caught] = []
        self.traceback: Found | None = None
        self.guardrail_reason: Found | None = None
        self.guardrail_verdict: Found | None = None
        self.gpu_warning: Found | None = None
        self.kernel_warning: Found | None = None  # counts for exit 0 only
        self.access: Found | None = None
        self.host_kill: Found | None = None
        self.argparse: Found | None = None
        self.spec_validation: Found | None = None
        self.nccl: Found | None = None
        self.last_warning: Found | None = None
        self.downloading = False
        self._before: deque[str] = deque(maxlen=CONTEXT_BEFORE)
        self._open: list[Found] = []
        self.tail: deque[str] = deque(maxlen=CONTEXT_AFTER)
        self._parsers: dict[int | None, ProgressParser] = {}
        self._moved: set[int | None] = set()
        # A family's own signatures (engine/profiles/<family>_failures.py), first of each.
        self.signatures: dict[str, Found] = {}
        self._signatures = family_signatures(profile)

    def feed_all(self, lines: Iterable[str]) -> LogScanner:
        """Feed every line; return self."""
        for line in lines:
            self.feed(line)
        return self

    def feed(self, raw: str) -> None:
        """Take one clean line."""
        line = raw[:MAX_LINE] if len(raw) > MAX_LINE else raw
        for found in self._open:
            found.context.append(line)
            found.after += 1
        if self._open and self._open[0].after >= CONTEXT_AFTER:
            self._open = [f for f in self._open if f.after < CONTEXT_AFTER]
        rank, text = split_rank(line)
        self._phase(rank, text)
        self._evidence(rank, text, line)
        for key, pattern in self._signatures:
            if key not in self.signatures and pattern.search(text):
                self.signatures[key] = self._found(rank, text, line)
        self._before.append(line)
        self.tail.append(line)
        self.lines += 1

    def _found(self, rank: int | None, text: str, line: str) -> Found:
        found = Found(self.lines, rank, text.strip(), [*self._before, line])
        self._open.append(found)
        return found

    def _evidence(self, rank: int | None, text: str, line: str) -> None:
        if self.nccl is None and NCCL.search(text):
            self.nccl = self._found(rank, text, line)
        if "Error" in text or "Exception" in text:
            caught = exception_in(text)
            if caught is not None and len(self.exceptions) < MAX_FOUND:
                self.exceptions.append(Caught(self._found(rank, text, line), *caught))
                return
        if self.traceback is None and TRACEBACK.search(text):
            self.traceback = self._found(rank, text, line)
        elif self.guardrail_reason is None and "GUARDRAIL BLOCKED" in text:
            match = _GUARDRAIL_REASON.search(text)
            if match is not None:
                self.guardrail_reason = self._found(rank, match.group("reason"), line)
        elif self.guardrail_verdict is None and GUARDRAIL_VERDICT.search(text):
            self.guardrail_verdict = self._found(rank, text, line)
        elif self.gpu_warning is None and _GPU_SUPPORT.search(text):
            self.gpu_warning = self._found(rank, text, line)
        elif self.kernel_warning is None and KERNEL_FAILED.search(text):
            self.kernel_warning = self._found(rank, text, line)
        elif self.access is None and _ACCESS.search(text):
            self.access = self._found(rank, text, line)
        elif self.host_kill is None and _HOST_KILL.search(text):
            self.host_kill = self._found(rank, text, line)
        elif self.argparse is None and _ARGPARSE.search(text):
            self.argparse = self._found(rank, text, line)
        elif self.spec_validation is None and SPEC_VALIDATION.search(text):
            self.spec_validation = self._found(rank, text.strip(" \u2502"), line)
        elif _WARNING.search(text):
            self.last_warning = Found(self.lines, rank, text.strip())

    def _phase(self, rank: int | None, text: str) -> None:
        if _DOWNLOADING.match(text):
            self.downloading = True
        parser = self._parsers.get(rank)
        if parser is None:
            if len(self._parsers) >= 64:
                return
            parser = self._parsers[rank] = parser_for(self.profile)
        if parser.feed(text, float(self.lines)):
            self._moved.add(rank)

    def phases(self) -> dict[int | None, str]:
        """Return the last phase each rank reached (None: lines without a rank)."""
        now = float(self.lines)
        return {
            rank: self._parsers[rank].estimate(now, None).phase
            for rank in sorted(self._moved, key=lambda r: -1 if r is None else r)
        }

    def last_phase(self) -> str | None:
        """Return the phase the run reached: the furthest any rank got, or None."""
        phases = self.phases()
        if not phases:
            return "downloading checkpoints" if self.downloading else None
        best = max(
            self._moved,
            key=lambda r: self._parsers[r].estimate(float(self.lines), None).percent,
        )
        return phases[best]

    def root_exception(self) -> Caught | None:
        """Return the first worker exception that is the cause, not a consequence.

        A ``TypeError`` from unpacking the None that a guardrail block returns is a
        consequence of the block, so it is skipped when a guardrail verdict was logged.
        """
        for caught in self.exceptions:
            if self.guardrail_verdict is not None and "NoneType" in caught.message:
                continue
            return caught
        return None


NUMBER = r"(\d+(?:\.\d+)?)\s*([KMGT]i?B)"
_UNITS = {"K": 1 / 1024 / 1024, "M": 1 / 1024, "G": 1.0, "T": 1024.0}


def gib(value: str, unit: str) -> float:
    """Convert a PyTorch memory figure (``2.00 GiB``, ``989.04 MiB``) to GiB."""
    return float(value) * _UNITS[unit[0]]


@dataclass(frozen=True)
class OomFigures:
    """The numbers of a CUDA out-of-memory message, in GiB (None when not printed).

    Attributes:
        requested: The allocation that failed.
        capacity: The GPU's total memory.
        this_process: What the failing process held.
        others: What other processes held on that GPU.

    """

    requested: float | None
    capacity: float | None
    this_process: float | None
    others: float


def oom_figures(text: str) -> OomFigures:
    """Read the figures of a PyTorch OOM message (current and older wordings).

    Inside a container PyTorch may list the failing process itself as ``Process N has``
    (its PID namespace differs); then the PyTorch-allocated memory tells them apart.
    """
    requested = re.search(r"Tried to allocate " + NUMBER, text)
    capacity = re.search(r"total capac\w+ of " + NUMBER, text) or re.search(
        NUMBER + r" total capacity", text
    )
    this = re.search(r"this process has " + NUMBER, text)
    listed = [gib(v, u) for v, u in re.findall(r"Process \d+ has " + NUMBER, text)]
    allocated = re.search(NUMBER + r" is allocated by PyTorch", text) or re.search(
        NUMBER + r" already allocated", text
    )
    reserved = re.search(NUMBER + r" is reserved by PyTorch but unallocated", text)
    own = gib(*this.groups()) if this else None
    others = sum(listed)
    if own is None and allocated is not None and listed:
        own = gib(*allocated.groups()) + (gib(*reserved.groups()) if reserved else 0.0)
        others = max(0.0, others - own)
    return OomFigures(
        gib(*requested.groups()) if requested else None,
        gib(*capacity.groups()) if capacity else None,
        own,
        others,
    )
