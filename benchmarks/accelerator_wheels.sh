#!/usr/bin/env bash
# The wheels that `benchmarks/accelerator.py` needs on a bare GPU machine with no network (it has jax,
# flax, optax, orbax, chex, etils, numpy, scipy, scikit-learn, tensorstore, matplotlib, h5py, tifffile,
# protobuf, pyarrow: not these), for its Python 3.12, at the versions of this checkout's .venv. Two are
# published as source only (promise, spectral: pure Python): their wheels are built here.
# Downloads them into .whl/ (kept out of git: .git/info/exclude). There, before the benchmark:
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
#   PYTHONPATH=/tmp/site:. python3 benchmarks/accelerator.py --json $OUT/accelerator.json
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=(tensorflow-datasets grain array-record dm-pix ml-collections tensorly tensorboardX
          importlib-resources dm-tree immutabledict simple-parsing docstring-parser
          tensorflow-metadata termcolor toml googleapis-common-protos portpicker)
SOURCE_ONLY=(promise spectral)
pin() {
  .venv/bin/python - "$@" <<'PY'
import sys
from importlib.metadata import version
from packaging.utils import canonicalize_name
for name in sys.argv[1:]:
    print(f"{canonicalize_name(name)}=={version(name)}")
PY
}
mkdir -p .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
# shellcheck disable=SC2046  # one pin per word
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl $(pin "${PACKAGES[@]}")
# shellcheck disable=SC2046
python3 -m pip wheel --quiet --no-deps -w .whl $(pin "${SOURCE_ONLY[@]}")
ls .whl
du -sh .whl
