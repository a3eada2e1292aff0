#!/usr/bin/env bash
# Refresh the English catalog: extract every message (babel.cfg), merge it into
# portal/translations/en/LC_MESSAGES/messages.po (new strings arrive with an empty msgstr:
# translate them there), then compile messages.mo. tests/test_translations.py fails while any
# msgstr is empty.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
DIR=portal/translations
PO=$DIR/en/LC_MESSAGES/messages.po
POT=$(mktemp --suffix=.pot)
trap 'rm -f "$POT"' EXIT

"$BIN/pybabel" -q extract -F babel.cfg --no-location --sort-output \
  --project hpf-portal --msgid-bugs-address "" -o "$POT" .
if [ -f "$PO" ]; then
  "$BIN/pybabel" -q update -i "$POT" -d "$DIR" -l en --no-fuzzy-matching --ignore-obsolete
else
  "$BIN/pybabel" -q init -i "$POT" -d "$DIR" -l en
fi
"$BIN/pybabel" compile --statistics -d "$DIR" -l en
