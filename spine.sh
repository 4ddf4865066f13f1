#!/usr/bin/env bash
# Spine's front door. Sets up .venv (once, and again whenever pyproject.toml, constraints.txt
# or the C extension's sources change), then runs what you ask for:
#   ./spine.sh demo  [extra spine-train overrides]   collect -> train (+ safety critic) -> export -> run -> replay on reach
#   ./spine.sh test  [pytest args]                  the whole test suite
#   ./spine.sh setup                                 only the environment
#   ./spine.sh setup-isaac                           Isaac Lab 3 in .venv-isaac (Python 3.12): docs/isaac.md
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
root=$PWD
venv="$root/.venv"
py="$venv/bin/python"

setup() {
  local want have stamp="$venv/.spine-installed" p
  # System packages, as root with apt (else: what to install):
  # - offscreen OpenGL for videos and rendered frames (MuJoCo via EGL, Mesa's software
  #   rasterizer; no GPU or display needed). Keep in step with sim/video.py::GL_PACKAGES.
  # - Cyclone DDS 0.10.2 from Debian (the C library of ROS 2 Humble and Jazzy) with its DDS
  #   Security plugins (libdds_security_{auth,ac,crypto}); the PyPI wheels ship none, so the
  #   ros extra's Python binding (constraints.txt) is built against this library below.
  local gl_pkgs=(libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0)
  local dds_pkgs=(libddsc0debian cyclonedds-dev cyclonedds-tools)
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends)
  local gl_missing=() dds_missing=()
  if command -v dpkg-query >/dev/null; then
    for p in "${gl_pkgs[@]}" "${dds_pkgs[@]}"; do
      if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        case " ${gl_pkgs[*]} " in *" $p "*) gl_missing+=("$p") ;; *) dds_missing+=("$p") ;; esac
      fi
    done
  fi
  local missing=("${gl_missing[@]}" "${dds_missing[@]}")
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      echo "[spine] installing system packages: ${missing[*]}"
      "${apt[@]}" "${missing[@]}" >/dev/null || { apt-get update -qq && "${apt[@]}" "${missing[@]}" >/dev/null; } ||
        echo "[spine] could not install ${missing[*]}" >&2
    else
      [ ${#gl_missing[@]} -eq 0 ] || echo "[spine] videos and rendering need offscreen GL:" \
        "sudo apt-get install ${gl_missing[*]} (or libosmesa6 with MUJOCO_GL=osmesa)" >&2
      [ ${#dds_missing[@]} -eq 0 ] || echo "[spine] the ros extra needs Cyclone DDS with DDS Security:" \
        "sudo apt-get install ${dds_missing[*]} (or CYCLONEDDS_HOME=<a Cyclone DDS 0.10 install>)" >&2
    fi
  fi
  # the C extension (setup.py, deploy/safety/native/) is rebuilt when its sources change too
  want=$(cat pyproject.toml constraints.txt setup.py deploy/safety/native/*.[ch] | sha256sum | cut -d' ' -f1)
  have=$(cat "$stamp" 2>/dev/null || true)
  if [ -x "$py" ] && [ "$want" = "$have" ]; then return; fi
  echo "[spine] setting up $venv (pins from constraints.txt)"
  [ -x "$py" ] || python3 -m venv "$venv"
  # cyclonedds (an sdist for Python 3.11) builds against $CYCLONEDDS_HOME/{include,bin,lib};
  # Debian's multiarch layout gets a folder of links in the venv (the binding records the path).
  local cyhome="${CYCLONEDDS_HOME:-}" ddsc
  if [ -z "$cyhome" ]; then
    ddsc=$(ls /usr/lib/*/libddsc.so /usr/lib/libddsc.so 2>/dev/null | head -n 1 || true)
    if [ -z "$ddsc" ] || [ ! -f /usr/include/dds/dds.h ]; then
      echo "[spine] ERROR: no Cyclone DDS C library with headers (libddsc.so, dds/dds.h) to build the" \
        "cyclonedds binding against: apt-get install ${dds_pkgs[*]}, or set CYCLONEDDS_HOME" >&2
      exit 1
    fi
    cyhome="$venv/cyclonedds-home"
    mkdir -p "$cyhome"
    ln -sfn /usr/include "$cyhome/include"
    ln -sfn /usr/bin "$cyhome/bin"
    ln -sfn "$(dirname "$ddsc")" "$cyhome/lib"
  fi
  "$py" -m pip install --quiet --upgrade pip
  CYCLONEDDS_HOME="$cyhome" "$py" -m pip install --quiet --no-binary cyclonedds -c constraints.txt -e ".[dev]"
  echo "$want" >"$stamp"
}

demo() {
  local out="${SPINE_DEMO_DIR:-runs/demo}"
  local bin="$venv/bin"
  rm -rf "$out"/{data,train,critic,bundle,run,replay}
  "$bin/spine-collect" task=reach episodes=300 seed=0 out="$out/data"
  "$bin/spine-train" task=reach policy=gcbc dataset="$out/data/reach.npz" out="$out/train" "$@"
  "$bin/spine-train-critic" task=reach data.episodes=200 critic.steps=3000 out="$out/critic"
  "$bin/spine-export" "$out/critic/checkpoint" --out "$out/critic"
  "$bin/spine-export" "$out/train/checkpoint" --out "$out/bundle" --critic "$out/critic/critic.onnx"
  "$bin/spine-run" "$out/bundle" --task reach --episodes 20 --seed 1000 --log "$out/run"
  "$bin/spine-replay" "$out/run/log" --bundle "$out/bundle" --out "$out/replay"
  "$bin/spine-summary" "$out"
}

# Isaac Lab 3 (kit-less, Newton physics) cannot share .venv (it needs Python 3.12, torch 2.11 and
# mujoco 3.12): its own environment, with Spine's source on its path and no Spine dependencies.
setup_isaac() {
  local ivenv="$root/.venv-isaac" stamp="$root/.venv-isaac/.spine-isaac-installed" want py312 v
  # stamp: the pins and this checkout's path (the .pth below names it)
  want=$( (cat isaac/requirements.txt isaac/requirements-importer.txt isaac/constraints.txt; echo "$root") | sha256sum | cut -d' ' -f1)
  if [ -x "$ivenv/bin/python" ] && [ "$want" = "$(cat "$stamp" 2>/dev/null || true)" ]; then return; fi
  py312=""  # the first that runs as 3.12 (a pyenv shim on the PATH may not)
  for v in "${SPINE_PYTHON312:-}" "$(command -v python3.12 || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python3.12; do
    if [ -z "$py312" ] && [ -n "$v" ] && "$v" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
      py312="$v"
    fi
  done
  if [ -z "$py312" ]; then
    echo "[spine] ERROR: Isaac Lab 3 needs Python 3.12: install it (e.g. pyenv install 3.12) or set SPINE_PYTHON312" >&2
    exit 1
  fi
  echo "[spine] setting up $ivenv with $py312 (isaaclab 3.0.0, pins from isaac/constraints.txt; several GB)"
  [ -x "$ivenv/bin/python" ] || "$py312" -m venv "$ivenv"
  "$ivenv/bin/python" -m pip install --quiet --upgrade pip
  "$ivenv/bin/python" -m pip install --quiet -c isaac/constraints.txt -r isaac/requirements.txt
  "$ivenv/bin/python" -m pip install --quiet --no-deps -c isaac/constraints.txt -r isaac/requirements-importer.txt
  "$ivenv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" |
    { read -r site; echo "$root" >"$site/spine_repo.pth"; }  # Spine's sim/ and isaac/ on its path
  # compile Newton's CPU kernels and convert arm7 to USD once (minutes), so later runs start fast
  (cd "$root" && "$ivenv/bin/python" -m isaac.check --robot arm7 --num_envs 2 --steps 2)
  echo "$want" >"$stamp"
}

cmd="${1:-help}"
shift || true
case "$cmd" in
  setup) setup ;;
  setup-isaac) setup_isaac ;;
  demo) setup; demo "$@" ;;
  test) setup; cd "$root"; "$py" -m pytest "$@" ;;
  *) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
