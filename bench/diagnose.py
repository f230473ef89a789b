"""Diagnosis score on real Cosmos log excerpts (tests/fixtures/real_logs).

Each excerpt is diagnosed the way ``cosmos diagnose FILE --exit-code N --profile P``
does it (streamed through the run-log normaliser, scanner and classifier). Printed:

- decisive right: excerpts whose deciding line is visible, diagnosed with the right kind
  and a fix that contains the expected word (and the right rank, when the log names one);
- confident wrong: a kind that is neither the true one nor "unknown" (must be 0);
- unknown: excerpts answered "cause not shown";
- phase recognised: excerpts with a known last phase whose phase was named;
- held out right: of the excerpts added after the classifier was written (never used to
  tune it), those answered right (or "unknown" when their deciding line is not visible).

Usage: .venv/bin/python bench/diagnose.py [-v]
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cosmos_tui.engine.diagnose import diagnose_file  # noqa: E402

CORPUS = ROOT / "tests" / "fixtures" / "real_logs"


def main(verbose: bool) -> int:
    """Score the corpus; return 1 when a decisive excerpt is wrong or a kind is wrong."""
    entries = tomllib.loads((CORPUS / "manifest.toml").read_text(encoding="utf-8"))["excerpt"]
    decisive = right = wrong = unknown = phased = phase_known = 0
    held = held_right = 0
    for entry in entries:
        failure, _ = diagnose_file(CORPUS / entry["file"], entry.get("exit_code"), entry["profile"])
        kind = failure.kind.value
        fix_ok = entry["fix"] in failure.message.lower()
        rank_ok = "rank" not in entry or failure.rank == entry["rank"]
        ok = kind == entry["kind"] and fix_ok and rank_ok
        if entry["decisive"]:
            decisive += 1
            right += ok
        if kind not in (entry["kind"], "unknown"):
            wrong += 1
        if entry.get("held_out"):
            held += 1
            held_right += ok or (not entry["decisive"] and kind == "unknown")
        unknown += kind == "unknown"
        if entry["phase"]:
            phase_known += 1
            phased += entry["phase"] in (failure.phase or "")
        if verbose:
            mark = "ok " if ok or (not entry["decisive"] and kind == "unknown") else "BAD"
            print(f"{mark} {entry['file']:36} {kind:18} rank={failure.rank} phase={failure.phase}")
    print(f"excerpts:          {len(entries)}")
    print(f"decisive right:    {right}/{decisive}")
    print(f"confident wrong:   {wrong}")
    print(f"unknown:           {unknown}/{len(entries)}")
    print(f"phase recognised:  {phased}/{phase_known}")
    print(f"held out right:    {held_right}/{held}  (added after the classifier was written)")
    return 0 if right == decisive and wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main("-v" in sys.argv[1:]))
