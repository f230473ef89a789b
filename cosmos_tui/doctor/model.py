"""The doctor's findings: one result per check, and a report per host."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Outcome(enum.StrEnum):
    """How a check ended."""

    PASS = "pass"  # noqa: S105 (an outcome, not a password)
    FAIL = "fail"
    SKIP = "skip"  # not run: a check it depends on failed


@dataclass(frozen=True)
class CheckResult:
    """One check's result.

    Attributes:
        check: Stable id (``ssh``, ``docker``, ``image``...), also in ``--json``.
        title: What was checked, for people.
        outcome: Pass, fail or skip.
        detail: What was found (a figure, a path, the error).
        fix: On failure, the exact command or change that fixes it.
    """

    check: str
    title: str
    outcome: Outcome
    detail: str = ""
    fix: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form."""
        return {
            "check": self.check,
            "title": self.title,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class DoctorReport:
    """Every check of one host, in order."""

    host: str
    profile: str
    results: tuple[CheckResult, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return all(r.outcome is not Outcome.FAIL for r in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The failed checks."""
        return tuple(r for r in self.results if r.outcome is Outcome.FAIL)

    def result(self, check: str) -> CheckResult:
        """Return the result of ``check`` (KeyError when it was not run)."""
        for result in self.results:
            if result.check == check:
                return result
        raise KeyError(check)

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form."""
        return {
            "host": self.host,
            "profile": self.profile,
            "ok": self.ok,
            "checks": [r.to_json() for r in self.results],
        }


def passed(check: str, title: str, detail: str = "") -> CheckResult:
    """A passing result."""
    return CheckResult(check, title, Outcome.PASS, detail)


def failed(check: str, title: str, detail: str, fix: str) -> CheckResult:
    """A failing result with its fix."""
    return CheckResult(check, title, Outcome.FAIL, detail, fix)


def skipped(check: str, title: str, detail: str) -> CheckResult:
    """A check that was not run, with the reason."""
    return CheckResult(check, title, Outcome.SKIP, detail)


MARKS = {"pass": "ok  ", "fail": "FAIL", "skip": "skip"}


def report_text(report: DoctorReport) -> str:
    """The human-readable report of one host: a line per check, the fix under a failure.

    Shared by ``cosmos doctor`` and the TUI (which shows it as plain text: details quote
    what the host said).
    """
    lines = [f"{report.host} (profile {report.profile})"]
    for result in report.results:
        lines.append(f"  [{MARKS[result.outcome.value]}] {result.title}: {result.detail}")
        if result.fix:
            lines.append(f"         fix: {result.fix}")
    verdict = "ready" if report.ok else f"{len(report.failures)} problem(s)"
    lines.append(f"  => {report.host}: {verdict}")
    return "\n".join(lines)
