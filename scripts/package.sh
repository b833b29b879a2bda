#!/usr/bin/env bash
# Builds the deployable zip for the Functions custom handler: a self-contained linux-x64 publish
# of functions/DurableAgents.Functions (executable bit kept) with host.json at the zip root.
# Usage: bash scripts/package.sh [output.zip]   (default artifacts/durableagents.zip)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${1:-artifacts/durableagents.zip}"
STAGE="$(mktemp -d -t durableagents-package.XXXXXX)"
trap 'rm -rf "$STAGE"' EXIT

dotnet publish functions/DurableAgents.Functions -c Release -r linux-x64 --self-contained true \
  -p:PublishSingleFile=false -o "$STAGE" -nologo -clp:ErrorsOnly
cp host.json "$STAGE/"
# One folder per function (function.json), at the package root next to host.json.
for dir in functions/DurableAgents.Functions/Triggers/*/; do
  cp -r "$dir" "$STAGE/"
done
chmod +x "$STAGE/DurableAgents.Functions"

mkdir -p "$(dirname "$OUT")"
rm -f "$OUT"
# Python's zipfile keeps the executable bit (external_attr); no zip binary needed.
python3 - "$STAGE" "$OUT" <<'PY'
import os, sys, zipfile
stage, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for root, _, files in os.walk(stage):
        for f in files:
            path = os.path.join(root, f)
            info = zipfile.ZipInfo.from_file(path, os.path.relpath(path, stage))
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as fh:
                z.writestr(info, fh.read())
PY
echo "package: $OUT"
