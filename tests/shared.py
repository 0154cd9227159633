"""Where the shared reference data lives: `shared/fixtures` beside the checkout (as CI lays it
out), else the workspace's copy."""

from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = [
    _ROOT.parent / "shared" / "fixtures",
    _ROOT / "shared" / "fixtures",
    Path("/work/shared/fixtures"),
]
FIXTURES = next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])
