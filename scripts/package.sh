#!/usr/bin/env bash
# Builds the deployable zip for either hosting mode, with host.json at the zip root:
#   customHandler (default): a self-contained linux-x64 publish of functions/DurableAgents.Functions
#     (executable bit kept), the root host.json and one folder per function (function.json);
#   isolated: a framework-dependent publish of functions/DurableAgents.Functions.Isolated (the
#     Durable Functions app; its own host.json, functions.metadata and .azurefunctions/ extensions).
# Usage: bash scripts/package.sh [output.zip] [customHandler|isolated]   (default artifacts/durableagents.zip)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${1:-artifacts/durableagents.zip}"
MODE="${2:-customHandler}"
STAGE="$(mktemp -d -t durableagents-package.XXXXXX)"
trap 'rm -rf "$STAGE"' EXIT

case "$MODE" in
  customHandler)
    dotnet publish functions/DurableAgents.Functions -c Release -r linux-x64 --self-contained true \
      -p:PublishSingleFile=false -o "$STAGE" -nologo -clp:ErrorsOnly
    cp host.json "$STAGE/"
    # One folder per function (function.json), at the package root next to host.json.
    for dir in functions/DurableAgents.Functions/Triggers/*/; do
      cp -r "$dir" "$STAGE/"
    done
    chmod +x "$STAGE/DurableAgents.Functions"
    ;;
  isolated)
    dotnet publish functions/DurableAgents.Functions.Isolated -c Release -o "$STAGE" -nologo -clp:ErrorsOnly
    # Microsoft.AspNet.WebApi.Client is not ours to ship (see NoWebApiClient.targets): refuse a package that has it.
    if find "$STAGE" -name 'System.Net.Http.Formatting.dll' -o -name '*WebApiCompatShim*' | grep -q . \
       || grep -rqs 'Microsoft.AspNet.WebApi.Client' --include='*.deps.json' "$STAGE"; then
      echo "error: the isolated package contains Microsoft.AspNet.WebApi.Client; not packaging it" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: bash scripts/package.sh [output.zip] [customHandler|isolated]" >&2
    exit 2
    ;;
esac

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
echo "package ($MODE): $OUT"
