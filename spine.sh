#!/usr/bin/env bash
# Spine's front door. Sets up .venv (once, and again whenever pyproject.toml, constraints.txt
# or the C extension's sources change), then runs what you ask for:
#   ./spine.sh demo  [extra spine-train overrides]   collect -> train (+ safety critic) -> export -> run -> replay on reach
#   ./spine.sh test  [pytest args]                  the whole test suite
#   ./spine.sh setup                                 only the environment
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
root=$PWD
venv="$root/.venv"
py="$venv/bin/python"

setup() {
  local want have stamp="$venv/.spine-installed"
  # Offscreen OpenGL for videos and rendered frames (MuJoCo via EGL, Mesa's software
  # rasterizer; no GPU or display needed). Keep in step with sim/video.py::GL_PACKAGES.
  local gl_pkgs=(libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0) missing=() p
  if command -v dpkg-query >/dev/null; then
    for p in "${gl_pkgs[@]}"; do
      if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
      fi
    done
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends)
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      echo "[spine] installing offscreen GL: ${missing[*]}"
      "${apt[@]}" "${missing[@]}" >/dev/null || { apt-get update -qq && "${apt[@]}" "${missing[@]}" >/dev/null; } ||
        echo "[spine] could not install ${missing[*]}; videos and rendering will fail until they are" >&2
    else
      echo "[spine] videos and rendering need offscreen GL: sudo apt-get install ${missing[*]}" \
        "(or libosmesa6 with MUJOCO_GL=osmesa); everything else works without it" >&2
    fi
  fi
  # the C extension (setup.py, deploy/native/) is rebuilt when its sources change too
  want=$(cat pyproject.toml constraints.txt setup.py deploy/native/*.[ch] | sha256sum | cut -d' ' -f1)
  have=$(cat "$stamp" 2>/dev/null || true)
  if [ -x "$py" ] && [ "$want" = "$have" ]; then return; fi
  echo "[spine] setting up $venv (pins from constraints.txt)"
  [ -x "$py" ] || python3 -m venv "$venv"
  "$py" -m pip install --quiet --upgrade pip
  "$py" -m pip install --quiet -c constraints.txt -e ".[dev]"
  echo "$want" >"$stamp"
}

demo() {
  local out="${SPINE_DEMO_DIR:-runs/demo}"
  local bin="$venv/bin"
  rm -rf "$out"/{data,train,critic,bundle,run,replay}
  "$bin/spine-collect" task=reach episodes=300 seed=0 out="$out/data"
  "$bin/spine-train" task=reach policy=gcbc dataset="$out/data/reach.npz" out="$out/train" "$@"
  "$bin/spine-train-critic" task=reach data.episodes=200 critic.steps=3000 out="$out/critic"
  "$bin/spine-export" "$out/train/checkpoint" --out "$out/bundle" --critic "$out/critic/critic.onnx"
  "$bin/spine-run" "$out/bundle" --task reach --episodes 20 --seed 1000 --log "$out/run"
  "$bin/spine-replay" "$out/run/log" --bundle "$out/bundle" --out "$out/replay"
  "$bin/spine-summary" "$out"
}

cmd="${1:-help}"
shift || true
case "$cmd" in
  setup) setup ;;
  demo) setup; demo "$@" ;;
  test) setup; cd "$root"; "$py" -m pytest "$@" ;;
  *) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
