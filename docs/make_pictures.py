"""Refresh the README's pictures: ``docs/panel.png`` and ``docs/panel-heatmap.png``.

    python docs/make_pictures.py                        # JupyterLab, into docs/
    python docs/make_pictures.py --front-end notebook7  # the same flow in Notebook 7
    python docs/make_pictures.py --out /tmp/pictures    # somewhere else

Runs the browser test's flow (``tests/test_browser.py``: the quickstart notebook in a fresh
Jupyter server, driven in Debian's headless Chromium; it checks what it shows on the way) and
keeps its two screenshots of the sampler panel. Needs what that test needs: ``apt-get install
chromium`` and ``pip install -e ".[test]"``. Run it from anywhere; it uses this checkout.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    sys.path.insert(0, str(REPO))
    from tests.test_browser import FRONT_ENDS, JupyterServer, Missing, panel_flow, requirements

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--front-end", choices=list(FRONT_ENDS), default="jupyterlab",
                        help="the front end to take the pictures in (default: jupyterlab)")
    parser.add_argument("--out", type=Path, default=REPO / "docs",
                        help="folder for panel.png and panel-heatmap.png (default: docs/)")
    args = parser.parse_args(argv)
    front = FRONT_ENDS[args.front_end]
    try:
        requirements(front)
    except Missing as exc:
        print(f"make_pictures: needs {exc}: apt-get install chromium; pip install -e \".[test]\"",
              file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="charrnn-pictures-") as tmp:
        root = Path(tmp) / "notebooks"
        root.mkdir()
        server = JupyterServer(front, root)
        try:
            server.wait_ready()
            shots = panel_flow(server, Path(tmp) / "screenshots")
        finally:
            server.stop()
        args.out.mkdir(parents=True, exist_ok=True)
        for shot in shots.values():
            target = args.out / shot.name
            shutil.copyfile(shot, target)
            print(f"wrote {target} ({target.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
