"""The shared test data sets, read in place from ../shared/data (never copied into the repo)."""
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def read(name: str) -> str:
    path = DATA_DIR / name
    if not path.is_file():
        pytest.fail(f"test data {path} is missing: the tests read ../shared/data/ beside the repo")
    return path.read_text(encoding="utf-8")
