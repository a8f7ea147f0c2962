#!/usr/bin/env bash
# install.sh: install simclip (the meme shield's local server) into a virtual environment, with the
# torch build this machine needs. No sudo, no system packages; run it again at any time (it keeps
# what is already there).
#
#   bash install.sh                 # .venv in this folder; torch: CUDA build if an NVIDIA driver
#                                   # is present, else the CPU build (Linux) or PyPI's (macOS)
#   bash install.sh --dry-run       # print the commands, run nothing
#   bash install.sh --cpu           # force the CPU build (about 200 MB instead of about 3 GB)
#   bash install.sh --torch "torch==2.14.1 torchvision==0.29.1" --index-url URL
#
# Then: .venv/bin/simclip-server (docs/install.md).
set -euo pipefail

CPU_INDEX_URL="https://download.pytorch.org/whl/cpu"  # PyTorch's CPU-only wheels (Linux, Windows)
MIN_PYTHON="3.11"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() {
  cat <<EOF
Usage: bash install.sh [options]

Installs simclip and its server into a virtual environment: creates it, installs torch from the
index that fits this machine, then 'pip install -e .[server]'. Needs Python >= $MIN_PYTHON; no sudo.

Options:
  --venv DIR          virtual environment to create or update (default: $ROOT/.venv)
  --python PY         Python interpreter to build it with (default: the newest python3.1x >= $MIN_PYTHON)
  --cpu               install the CPU build of torch (PyTorch's CPU index: $CPU_INDEX_URL)
  --cuda              install the CUDA build of torch (PyPI's Linux wheels are CUDA builds)
  --torch SPEC        torch requirements (default: "torch torchvision"; env SIMCLIP_TORCH_SPEC)
  --index-url URL     where torch comes from, overriding the choice above (env SIMCLIP_TORCH_INDEX_URL)
  --extras LIST       extras of simclip to install (default: server; e.g. server,scale; env SIMCLIP_EXTRAS)
  --reinstall-torch   replace the torch already in the environment (to switch CPU <-> CUDA)
  --dry-run           print what it would run, run nothing
  -h, --help          this help

Environment: SIMCLIP_TORCH_SPEC, SIMCLIP_TORCH_INDEX_URL, SIMCLIP_EXTRAS as above; SIMCLIP_PYPI_URL
(default https://pypi.org) is where pip itself is fetched when this Python has no ensurepip.
EOF
}

say() { printf '%s\n' "$*" >&2; }
die() { say "install.sh: $*"; exit 1; }

# Print a command the way a shell reads it back; run it unless --dry-run.
run() {
  local quoted
  quoted="$(printf '%q ' "$@")"
  say "+ ${quoted% }"
  if [ "$DRY_RUN" = 0 ]; then
    "$@"
  fi
}

VENV="$ROOT/.venv"
PY=""
BUILD=""            # cpu | cuda | default (empty: detect)
TORCH_SPEC="${SIMCLIP_TORCH_SPEC:-torch torchvision}"
INDEX_URL="${SIMCLIP_TORCH_INDEX_URL:-}"
EXTRAS="${SIMCLIP_EXTRAS:-server}"
REINSTALL_TORCH=0
DRY_RUN=0
PYPI_URL="${SIMCLIP_PYPI_URL:-https://pypi.org}"
NVIDIA_PROC="${SIMCLIP_NVIDIA_PROC:-/proc/driver/nvidia}"  # the driver's /proc folder (tests move it)

while [ $# -gt 0 ]; do
  case "$1" in
    --venv) [ $# -ge 2 ] || die "--venv needs a folder"; VENV="$2"; shift 2 ;;
    --venv=*) VENV="${1#*=}"; shift ;;
    --python) [ $# -ge 2 ] || die "--python needs an interpreter"; PY="$2"; shift 2 ;;
    --python=*) PY="${1#*=}"; shift ;;
    --cpu) BUILD="cpu"; shift ;;
    --cuda) BUILD="cuda"; shift ;;
    --torch) [ $# -ge 2 ] || die "--torch needs a requirement list"; TORCH_SPEC="$2"; shift 2 ;;
    --torch=*) TORCH_SPEC="${1#*=}"; shift ;;
    --index-url) [ $# -ge 2 ] || die "--index-url needs a URL"; INDEX_URL="$2"; shift 2 ;;
    --index-url=*) INDEX_URL="${1#*=}"; shift ;;
    --extras) [ $# -ge 2 ] || die "--extras needs a list"; EXTRAS="$2"; shift 2 ;;
    --extras=*) EXTRAS="${1#*=}"; shift ;;
    --reinstall-torch) REINSTALL_TORCH=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

# ---------------------------------------------------------------- Python

python_ok() {  # $1 runs and is Python >= MIN_PYTHON
  "$1" -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$MIN_PYTHON'.split('.'))))" \
    >/dev/null 2>&1
}

if [ -n "$PY" ]; then
  command -v "$PY" >/dev/null 2>&1 || die "--python $PY: not found"
  python_ok "$PY" || die "--python $PY is not Python >= $MIN_PYTHON"
else
  for candidate in python3 python3.14 python3.13 python3.12 python3.11 python; do
    if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
      PY="$candidate"
      break
    fi
  done
  if [ -z "$PY" ]; then
    found="$(python3 --version 2>&1 || echo 'no python3')"
    die "simclip needs Python >= $MIN_PYTHON; found: $found.
  Debian 12 and Ubuntu 24.04 have it (python3); on Ubuntu 22.04 install python3.11 (deadsnakes PPA),
  or get one without sudo with uv (https://docs.astral.sh/uv: 'uv python install 3.12'),
  then run: bash install.sh --python /path/to/python3.12"
  fi
fi
PY_VERSION="$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"

# ---------------------------------------------------------------- torch build

OS="$(uname -s)"
case "$OS" in
  MINGW*|MSYS*|CYGWIN*) VBIN="Scripts"; VPY="$VENV/Scripts/python.exe" ;;
  *) VBIN="bin"; VPY="$VENV/bin/python" ;;
esac

has_nvidia_gpu() {  # an NVIDIA driver is loaded: nvidia-smi answers, or the driver's /proc entry
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    return 0
  fi
  [ -e "$NVIDIA_PROC/version" ]
}

why=""
if [ -n "$BUILD" ]; then
  why="asked for with --$BUILD"
else
  case "$OS" in
    Linux)
      if has_nvidia_gpu; then
        BUILD="cuda"; why="an NVIDIA driver is present"
      else
        BUILD="cpu"; why="no NVIDIA driver: no working nvidia-smi, no $NVIDIA_PROC"
      fi ;;
    MINGW*|MSYS*|CYGWIN*)
      if has_nvidia_gpu; then
        BUILD="cuda"; why="an NVIDIA driver is present"
      else
        BUILD="default"; why="Windows: PyPI's torch is the CPU build"
      fi ;;
    *) BUILD="default"; why="$OS: PyPI's torch wheels fit (Metal on Apple silicon)" ;;
  esac
fi
if [ -z "$INDEX_URL" ]; then
  case "$BUILD" in
    cpu) INDEX_URL="$CPU_INDEX_URL" ;;
    cuda)
      case "$OS" in
        MINGW*|MSYS*|CYGWIN*) INDEX_URL="https://download.pytorch.org/whl/cu128" ;;
        *) ;;  # PyPI's Linux wheels are the CUDA build
      esac ;;
    *) ;;
  esac
fi

say "simclip installer"
say "  Python:      $PY ($PY_VERSION)"
say "  environment: $VENV"
source_desc="pip's default index (PyPI)"
[ -n "$INDEX_URL" ] && source_desc="$INDEX_URL"
say "  torch:       $BUILD build ($why): $TORCH_SPEC from $source_desc"
say "  simclip:     pip install -e '${ROOT}[${EXTRAS}]'"
[ "$DRY_RUN" = 1 ] && say "  (dry run: the commands are printed, not run)"

# ---------------------------------------------------------------- virtual environment

bootstrap_pip() {  # a Python without ensurepip (Debian/Ubuntu without python3-venv): pip from PyPI
  say "$PY has no ensurepip (the python3-venv package is not installed); fetching pip from $PYPI_URL"
  if [ "$DRY_RUN" = 1 ]; then
    say "+ (download the latest pip wheel from $PYPI_URL/pypi/pip/json and install it into $VENV)"
    return 0
  fi
  local tmp
  tmp="$(mktemp -d)"
  # shellcheck disable=SC2064  # expand $tmp now
  trap "rm -rf '$tmp'" EXIT
  "$VPY" - "$PYPI_URL" "$tmp" <<'EOF' || die "could not download pip from $PYPI_URL (offline? install python3-venv, or set SIMCLIP_PYPI_URL to a mirror)"
import json, pathlib, sys, urllib.request
base, out = sys.argv[1].rstrip("/"), pathlib.Path(sys.argv[2])
with urllib.request.urlopen(f"{base}/pypi/pip/json", timeout=60) as r:
    wheel = next(f for f in json.load(r)["urls"] if f["packagetype"] == "bdist_wheel")
with urllib.request.urlopen(wheel["url"], timeout=120) as r:
    (out / wheel["filename"]).write_bytes(r.read())
EOF
  local whl
  whl="$(ls "$tmp"/pip-*.whl)"
  # --ignore-installed: a pip visible through PYTHONPATH is not this environment's
  run "$VPY" "$whl/pip" install --no-index --ignore-installed --quiet "$whl"
}

if [ -x "$VPY" ]; then
  say "using the existing environment $VENV"
elif "$PY" -c 'import ensurepip' >/dev/null 2>&1; then
  run "$PY" -m venv "$VENV"
else
  run "$PY" -m venv --without-pip "$VENV"
fi
if [ "$DRY_RUN" = 1 ]; then
  "$PY" -c 'import ensurepip' >/dev/null 2>&1 || bootstrap_pip
elif ! "$VPY" -I -m pip --version >/dev/null 2>&1; then  # -I: this environment's own pip
  bootstrap_pip
fi

# ---------------------------------------------------------------- torch, then simclip

installed_torch=""
if [ -x "$VPY" ]; then
  installed_torch="$("$VPY" -c 'from importlib.metadata import version; print(version("torch"))' \
    2>/dev/null || true)"
fi
if [ -n "$installed_torch" ]; then
  if [ "$REINSTALL_TORCH" = 1 ]; then
    run "$VPY" -m pip uninstall -y torch torchvision
  else
    say "torch $installed_torch is already in $VENV (--reinstall-torch replaces it)"
    case "$BUILD:$installed_torch" in
      cpu:*+cpu|default:*|cuda:*) ;;
      cpu:*) say "  note: it is not a +cpu build; 'bash install.sh --cpu --reinstall-torch' installs the smaller CPU build" ;;
    esac
  fi
fi
# shellcheck disable=SC2206  # the spec is a list of requirements, split on spaces
torch_reqs=($TORCH_SPEC)
index_args=()
[ -n "$INDEX_URL" ] && index_args=(--index-url "$INDEX_URL")
# ${a[@]+"${a[@]}"}: an empty array under set -u in bash 3.2 (macOS)
run "$VPY" -m pip install ${index_args[@]+"${index_args[@]}"} "${torch_reqs[@]}" ||
  die "pip could not install torch ($TORCH_SPEC from $source_desc), see above. Check the connection,
  or choose another source: --index-url URL, --torch 'torch==X torchvision==Y', --cpu / --cuda"
run "$VPY" -m pip install -e "${ROOT}[${EXTRAS}]" ||
  die "pip could not install simclip (see above); run the same command again once fixed"
# pip can leave a torch and a torchvision that do not import together (e.g. a torchvision built
# for another torch: 'operator torchvision::nms does not exist'); open_clip needs both.
run "$VPY" -c "import torch, torchvision, open_clip" ||
  die "the installed torch ($("$VPY" -c 'import torch; print(torch.__version__)' 2>/dev/null ||
  echo '?')) and torchvision do not import together (see above): install a matching pair,
  e.g. bash install.sh --reinstall-torch --torch 'torch==X torchvision==Y'"

# ---------------------------------------------------------------- next steps

rel="$VENV"
case "$VENV" in "$PWD"/*) rel="${VENV#"$PWD"/}" ;; esac
server="$rel/$VBIN/simclip-server"
say ""
if [ "$DRY_RUN" = 1 ]; then
  say "dry run: nothing was installed. Without --dry-run, next:"
else
  say "simclip is installed in $VENV. Next:"
fi
say "  1. start the server:   $server"
say "     (the first start downloads the CLIP weights, about 1.7 GB, once)"
say "  2. pair the extension: $server --print-token, then paste the token into the extension's"
say "     options page and press 'Save and test connection' (README: Pair the extension)"
say "  3. optional, start it at every login: $server --install-service"
say "  OCR: rapidocr is installed and is the default; for tesseract: pip install -e '.[tesseract]'"
say "  plus the system package (sudo apt-get install tesseract-ocr)."
