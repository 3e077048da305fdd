#!/usr/bin/env bash
# Install mmaffseg and the OpenMMLab stack it needs, on a fresh machine or over an existing one.
#
#   bash tools/install.sh            # runtime + test + optional + docs + tools requirements, editable install
#
# Environment overrides:
#   PYTHON=python3.11     interpreter to install into (default: python)
#   TORCH_SPEC='torch==2.4.1'   torch to install when none >= 2.1 is present (default torch==2.13.0)
#   MMAFFSEG_EXTRAS=tests        pip extras of mmaffseg to install (default: tests,optional,docs,tools)
#
# Idempotent: every step is skipped or is a no-op when already satisfied. mmcv 2.1.0 has no wheel
# for recent torch, so it is compiled from source once (about 20 minutes on 2 cores); pip keeps
# the built wheel in its cache (~/.cache/pip/wheels) and later runs reuse it in seconds.
set -euo pipefail

PYTHON=${PYTHON:-python}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=${MMAFFSEG_EXTRAS:-tests,optional,docs,tools}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

MMENGINE_SPEC='mmengine==0.10.7'
MMCV_VERSION='2.1.0'
MMSEG_SPEC='mmsegmentation==1.2.2'
NUMPY_SPEC='numpy>=1.23,<2.4'  # cityscapesscripts 2.3.0 calls np.in1d, removed in numpy 2.4

step_no=0
step() { step_no=$((step_no + 1)); echo; echo "==> [${step_no}] $*"; }
fail() { echo >&2; echo "ERROR (mmaffseg install, step ${step_no}): $*" >&2; exit 1; }
pip_install() { "$PYTHON" -m pip install --disable-pip-version-check "$@"; }

command -v "$PYTHON" >/dev/null 2>&1 || fail "interpreter '$PYTHON' not found; set PYTHON=..."
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 8)' \
  || fail "mmaffseg needs Python >= 3.8 ($("$PYTHON" --version 2>&1))"

step "torch (>= 2.1; installs ${TORCH_SPEC} if missing)"
if "$PYTHON" - <<'PY' 2>/dev/null
import torch
from packaging.version import Version
assert Version(torch.__version__.split('+')[0]) >= Version('2.1')
print(f'torch {torch.__version__} already installed')
PY
then :; else
  pip_install "$TORCH_SPEC" || fail "could not install ${TORCH_SPEC}"
fi

step "build tools and numpy (setuptools<81 keeps pkg_resources for mmcv/mmengine)"
pip_install 'setuptools<81' wheel ninja packaging "$NUMPY_SPEC" \
  || fail "could not install build tools"

step "${MMENGINE_SPEC}"
pip_install "$MMENGINE_SPEC" || fail "could not install ${MMENGINE_SPEC}"

step "full mmcv ${MMCV_VERSION} with compiled ops (source build on first run)"
if "$PYTHON" - "$MMCV_VERSION" <<'PY' 2>/dev/null
import sys
import mmcv
from mmcv.ops import nms  # noqa: F401  (fails for mmcv-lite / a broken build)
assert mmcv.__version__ == sys.argv[1]
print(f'mmcv {mmcv.__version__} with ops already installed')
PY
then :; else
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc 2>/dev/null || echo 2)} \
    pip_install --no-build-isolation "mmcv==${MMCV_VERSION}" \
    || fail "building mmcv ${MMCV_VERSION} failed (needs gcc, python headers, setuptools<81)"
  "$PYTHON" -c 'from mmcv.ops import nms' \
    || fail "mmcv installed but mmcv.ops does not import: the build has no compiled ops"
fi

step "${MMSEG_SPEC} and its undeclared imports (ftfy, regex)"
pip_install "$MMSEG_SPEC" ftfy regex "$NUMPY_SPEC" || fail "could not install ${MMSEG_SPEC}"

step "dense CRF (pydensecrf2 1.1 builds the 'pydensecrf' module from source)"
pip_install 'pydensecrf2==1.1' "$NUMPY_SPEC" || fail "could not build pydensecrf2==1.1"

step "mmaffseg itself (editable) with extras [${EXTRAS}]"
(cd "$ROOT" && pip_install -e ".[${EXTRAS}]" "$NUMPY_SPEC") || fail "could not install mmaffseg"

step "check"
"$PYTHON" - <<'PY' || fail "mmaffseg does not import after install"
import torch, mmcv, mmengine, mmseg, pydensecrf.densecrf  # noqa: F401
import mmaffseg
print(f'mmaffseg {mmaffseg.__version__}: torch {torch.__version__}, mmcv {mmcv.__version__}, '
      f'mmengine {mmengine.__version__}, mmseg {mmseg.__version__}')
PY
echo
echo "mmaffseg is installed. Run the tests with: python -m pytest tests"
