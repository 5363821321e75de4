#!/usr/bin/env bash
# The widget tests under ipywidgets 7 (Colab's and many JupyterHubs' stack), next to the main
# run's ipywidgets 8: a fresh virtual environment with this checkout, ipywidgets 7.8 and classic
# Notebook 6.5 with widgetsnbextension 3.6 (all from PyPI) runs
#   - the shell-level panel, inspector, progress and background-training tests, and the notebook
#     run in a real kernel;
#   - tests_ipywidgets7/: the panel in Notebook 6.5 in headless Chromium (/usr/bin/chromium).
# Any failing, skipped or missing test fails the script. The screenshots stay in the printed
# folder; the virtual environment is removed.
#
#   bash .ci/widgets7.sh        # three to four minutes here; needs python -m venv and chromium
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-python}

fail() { echo "widgets7: FAILED: $*" >&2; exit 1; }
step() { echo; echo "== widgets7: $*"; }

TESTS=(tests/test_panel.py tests/test_panel_timeline.py tests/test_inspector.py
       tests/test_inspect_magic.py tests/test_progress.py tests/test_magics.py
       tests/test_widget_compat.py tests/test_notebook_kernel.py tests_ipywidgets7)

work=$(mktemp -d "${TMPDIR:-/tmp}/charrnn-widgets7.XXXXXX")
venv=$work/venv
trap 'rm -rf "$venv" "$work/src"' EXIT

step "a virtual environment with ipywidgets 7.8 and Notebook 6.5"
"$PYTHON" -m venv "$venv" || fail "python -m venv"
# The package, built from a copy (a build writes into the folder it builds): installing it proves
# that its dependencies allow ipywidgets 7. The tests import this checkout (PYTHONPATH).
mkdir "$work/src"
cp -r pyproject.toml README.md charrnn_magic "$work/src/"
"$venv/bin/pip" install --quiet "$work/src" "ipywidgets==7.8.*" "notebook==6.5.*" \
    "widgetsnbextension==3.6.*" pytest hypothesis nbclient nbformat playwright \
    || fail "pip install"
echo "widgets7: installed in ${SECONDS} s"

step "the versions under test"
PYTHONPATH=$REPO "$venv/bin/python" - <<'EOF' || fail "not the ipywidgets-7 stack"
import ipykernel
import ipywidgets
import notebook
import widgetsnbextension

import charrnn_magic.notebook  # noqa: F401  (the package imports with ipywidgets 7)

for module, major in [(ipywidgets, "7"), (notebook, "6"), (widgetsnbextension, "3")]:
    assert module.__version__.split(".")[0] == major, (module.__name__, module.__version__)
print(f"ipywidgets {ipywidgets.__version__}, notebook {notebook.__version__}, "
      f"widgetsnbextension {widgetsnbextension.__version__}, ipykernel {ipykernel.__version__}")
EOF

step "the widget tests under ipywidgets 7"
report=$work/junit.xml
status=0
PYTHONPATH=$REPO "$venv/bin/python" -m pytest -p no:cacheprovider -q \
    --basetemp="$work/pytest" --junitxml="$report" "${TESTS[@]}" || status=$?
# Every test must have run and passed: a skip here is a test that did not run.
"$PYTHON" - "$report" <<'EOF' || fail "a test did not pass"
import sys
import xml.etree.ElementTree as ET

suite = ET.parse(sys.argv[1]).getroot().find("testsuite")
counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
print(f"widgets7: {counts}")
assert counts["tests"] > 0 and counts["failures"] == counts["errors"] == counts["skipped"] == 0
EOF
[ "$status" -eq 0 ] || fail "pytest exited with $status"
echo "widgets7: screenshots in $(find "$work/pytest" -name panel.png -printf '%h\n')"
echo "widgets7: passed in ${SECONDS} s"
