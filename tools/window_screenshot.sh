#!/usr/bin/env bash
# The README's hero image: the real live window (defaults, built-in scene) under Xvfb, captured
# SECONDS after the window first shows a picture. SECONDS may be a list (1,2,5): one screenshot
# at each, named OUT-1s.jpg, OUT-2s.jpg...; DREAMCAM_ARGS adds options (e.g. "--source cat.png").
#   apt-get install -y xvfb x11-apps imagemagick
#   [PYTHON=.venv/bin/python] tools/window_screenshot.sh [OUT.jpg] [SECONDS]   (docs/images/dream.jpg, 5)
set -euo pipefail
out=${1:-docs/images/dream.jpg}
after=${2:-5}
display=:${DREAMCAM_XVFB_DISPLAY:-47}
tmp=$(mktemp -d)
Xvfb "$display" -screen 0 1280x720x24 >/dev/null 2>&1 &
xvfb=$!
app=""
trap '[ -n "$app" ] && kill "$app" 2>/dev/null && wait "$app" 2>/dev/null; kill "$xvfb" 2>/dev/null; rm -rf "$tmp"' EXIT
sleep 2
env -u SDL_VIDEODRIVER DISPLAY="$display" SDL_AUDIODRIVER=dummy \
    "${PYTHON:-python}" -m realtime.commands.cli --windowed --log-level error ${DREAMCAM_ARGS:-} &
app=$!
for _ in $(seq 1 240); do  # wait (up to 2 min) for the first picture: a screen that is not black
    sleep 0.5
    xwd -root -display "$display" -silent >"$tmp/screen.xwd" 2>/dev/null || continue
    mean=$(convert "xwd:$tmp/screen.xwd" -resize 5% -format "%[fx:mean]" info: 2>/dev/null || echo 0)
    if awk "BEGIN {exit !($mean > 0.05)}"; then break; fi
done
if [[ "$after" != *,* ]]; then
    sleep "$after"
    xwd -root -display "$display" -silent | convert xwd:- -quality 82 "$out"
    echo "$out"
    exit 0
fi
start=$(date +%s.%N)
for at in ${after//,/ }; do  # each shot at its time after the first picture
    wait_s=$(awk "BEGIN {w = $start + $at - $(date +%s.%N); print (w > 0 ? w : 0)}")
    sleep "$wait_s"
    shot="${out%.*}-${at}s.${out##*.}"
    xwd -root -display "$display" -silent | convert xwd:- -quality 82 "$shot"
    echo "$shot"
done
