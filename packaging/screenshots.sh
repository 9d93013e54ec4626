#!/usr/bin/env bash
# Pictures for the README, taken from the running application (offscreen Qt).
#   packaging/screenshots.sh            -> docs/*.png
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p docs

# A small line: the demo recipe and 12 fresh demo parts inspected into a database.
$BIN/inspector demo --count 12 --seed 7 --out "$work/demo" > /dev/null
$BIN/inspector segment "$work/demo/images/part_0003.png" --overlay docs/demo-overlay.png > /dev/null

gui() { $BIN/inspector gui --db "$work/demo/inspector.db" --recipe "$work/demo/recipe/demo-label.yaml" "$@"; }
export XDG_CONFIG_HOME="$work/config"   # a clean window state, not the user's
# ...with the first-launch "Start here" panel already dismissed, as a user's would be.
mkdir -p "$work/config/Inspector" && printf '[General]\nstart_here_seen=true\n' > "$work/config/Inspector/Inspector.conf"
# Operate gets a database of its own: the demo's already holds these images, which a run skips.
$BIN/inspector gui --db "$work/operate.db" --recipe "$work/demo/recipe/demo-label.yaml" --tab operate \
    --source "$work/demo/images" --start --wait 20 --screenshot docs/operate.png
gui --tab recipes --wait 6 --screenshot docs/recipes.png
gui --tab history --wait 2 --screenshot docs/history.png
echo "wrote docs/demo-overlay.png docs/operate.png docs/recipes.png docs/history.png"
