#!/usr/bin/env bash
# Packaging as a user gets it: build the sdist and the wheel (the wheel is built from the
# sdist), check them with twine, install the wheel into a fresh virtual environment (its
# dependencies from PyPI, not from this checkout), and use it there from an empty folder:
# the built-in corpora and every subpackage must be inside the wheel, `python -m charrnn_magic`
# must train, and IPython must run `%load_ext charrnn_magic`, a short `%%charrnn_train` and
# `%charrnn_sample`. Any failure stops the script with a non-zero exit and says what failed.
#
#   bash .ci/check_wheel.sh        # needs `build` and `twine` (the test extra has them)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-python}

fail() { echo "check_wheel: FAILED: $*" >&2; exit 1; }
step() { echo; echo "== check_wheel: $*"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/charrnn-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT

step "build the sdist, then the wheel from it"
"$PYTHON" -m build --outdir "$work/dist" "$REPO" || fail "python -m build"
shopt -s nullglob
sdists=("$work"/dist/*.tar.gz)
wheels=("$work"/dist/*.whl)
shopt -u nullglob
[ ${#sdists[@]} -eq 1 ] || fail "expected one sdist in dist/, found ${#sdists[@]}"
[ ${#wheels[@]} -eq 1 ] || fail "expected one wheel in dist/, found ${#wheels[@]}"
sdist=${sdists[0]}
wheel=${wheels[0]}
echo "built $(basename "$sdist") and $(basename "$wheel")"

step "twine check"
"$PYTHON" -m twine check --strict "$sdist" "$wheel" || fail "twine check"

step "the wheel and the sdist hold every module of the package"
# The package's modules in this checkout (tracked files when it is a git checkout).
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    modules=$(git -C "$REPO" ls-files 'charrnn_magic/*.py')
else
    modules=$(cd "$REPO" && find charrnn_magic -name '*.py' -not -path '*/__pycache__/*')
fi
[ -n "$modules" ] || fail "found no module of charrnn_magic in $REPO"
MODULES=$modules "$PYTHON" - "$wheel" "$sdist" <<'EOF' || fail "the wheel or the sdist is incomplete"
import os, sys, tarfile, zipfile

wheel, sdist = sys.argv[1:]
wanted = sorted(os.environ["MODULES"].split())
# Named here so that a move of the corpora or of the notebook layer is noticed.
for must in ("charrnn_magic/corpora.py", "charrnn_magic/notebook/__init__.py",
             "charrnn_magic/__main__.py", "charrnn_magic/web/export.py"):
    if must not in wanted:
        sys.exit(f"{must} is not in the checkout any more: update .ci/check_wheel.sh")
in_wheel = set(zipfile.ZipFile(wheel).namelist())
with tarfile.open(sdist) as tar:
    # An sdist's files sit in one top folder, NAME-VERSION/.
    in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
# The web page's assets are package data, not modules: named here.
web = ["charrnn_magic/web/engine.js", "charrnn_magic/web/page.js", "charrnn_magic/web/page.css"]
bad = False
for what, names, extra in (("wheel", in_wheel, web),
                           ("sdist", in_sdist, ["pyproject.toml", "README.md", *web])):
    missing = [m for m in wanted + extra if m not in names]
    if missing:
        print(f"missing from the {what}: {', '.join(missing)}", file=sys.stderr)
        bad = True
    else:
        print(f"the {what} has all {len(wanted)} modules" + (" and " + ", ".join(extra) if extra else ""))
sys.exit(1 if bad else 0)
EOF

step "install the wheel into a fresh virtual environment"
"$PYTHON" -m venv "$work/venv" || fail "python -m venv (Debian's system Python needs python3-venv)"
venv_python=$work/venv/bin/python
"$venv_python" -m pip install --quiet --disable-pip-version-check "$wheel" \
    || fail "pip install $(basename "$wheel") into the virtual environment"

# From here on: an empty folder, no PYTHONPATH, so nothing can come from this checkout.
mkdir "$work/run"
cd "$work/run"
unset PYTHONPATH
export IPYTHONDIR=$work/ipython OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

step "the package imports from the virtual environment"
"$venv_python" - <<'EOF' || fail "charrnn_magic does not import from the installed wheel"
import sys
from pathlib import Path

import charrnn_magic
import charrnn_magic.notebook
from charrnn_magic.corpora import CORPORA, load_corpus

where = Path(charrnn_magic.__file__).resolve()
assert Path(sys.prefix).resolve() in where.parents, f"imported from {where}, not the venv"
for name in CORPORA:
    assert len(load_corpus(name)) > 1000, f"the built-in corpus {name!r} is (nearly) empty"
print(f"charrnn_magic {getattr(charrnn_magic, '__version__', '?')} from {where.parent}; "
      f"corpora: {', '.join(CORPORA)}")
EOF

step "python -m charrnn_magic --steps 5 (the built-in verse corpus)"
"$venv_python" -m charrnn_magic --steps 5 > main.out 2>&1 || { cat main.out; fail "python -m charrnn_magic"; }
cat main.out
grep -q "sample at temperature" main.out || fail "python -m charrnn_magic printed no sample"

step "export a web page from the installed wheel (its JavaScript and CSS are package data)"
"$venv_python" - <<'EOF' || fail "the installed wheel cannot export a web page"
from charrnn_magic import CharRNN

model = CharRNN("gru", 16, 1)
model.fit("the cat sat on the mat.\n" * 20, steps=3, seed=0)
page = model.export_html("page.html").read_text(encoding="utf-8")
for needle in ("CharRNNEngine", "window.charrnn", "charrnn-model"):
    assert needle in page, f"the exported page lacks {needle!r}"
print(f"exported page.html, {len(page.encode()):,} bytes")
EOF

step "IPython: %load_ext charrnn_magic, %%charrnn_train, %charrnn_sample"
# IPython runs each of exec_lines as a cell of its own (a cell magic must start its cell),
# then the -c code, which checks what they did: it exits non-zero when anything failed.
cat > ipython_check.py <<'PYEOF'
c.InteractiveShellApp.exec_lines = [
    "%load_ext charrnn_magic",
    "%%charrnn_train --steps 20 --quiet\n"
    "Hop, frog, hop! A lily pad waits;\n"
    "sing, moon, of big green gates.\n"
    "Quick fox, jump over my wall;\n"
    "sleepy owls hum, dusk comes for us all.\n",
    "sample = %charrnn_sample -n 20",
]
PYEOF
check='
assert "charrnn" in dir(), "%%charrnn_train bound no model to charrnn"
assert charrnn.step == 20, f"trained {charrnn.step} steps, not 20"
assert isinstance(sample, str) and len(sample) == 20, repr(sample)
assert set(sample) <= set(charrnn.vocab.chars), repr(sample)
print("IPython check passed:", repr(sample))
'
"$work/venv/bin/ipython" --no-banner --config="$PWD/ipython_check.py" -c "$check" \
    > ipython.out 2>&1 || { cat ipython.out; fail "IPython: the magics did not work"; }
cat ipython.out
grep -q "IPython check passed" ipython.out || fail "IPython did not run the check"

echo
echo "check_wheel: the sdist and the wheel are good"
