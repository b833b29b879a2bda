#!/usr/bin/env bash
# Deploys DurableAgents to Azure Functions Premium on a private VNet: creates the resource group,
# deploys infra/main.bicep, builds the package (scripts/package.sh), deploys the zip and prints the
# app URL. Safe to run again: every step is idempotent.
# Usage: bash scripts/deploy.sh <resource-group> [location] [customHandler|isolated]
#   customHandler (default): our engine on PostgreSQL, with the dashboard and the gRPC endpoint;
#   isolated: the .NET isolated Durable Functions app, its task hub in the app's storage account.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RG="${1:-}"
LOCATION="${2:-westeurope}"
MODE="${3:-customHandler}"
if [ -z "$RG" ]; then
  echo "usage: bash scripts/deploy.sh <resource-group> [location] [customHandler|isolated]" >&2
  exit 2
fi
if [ "$MODE" != "customHandler" ] && [ "$MODE" != "isolated" ]; then
  echo "error: the hosting mode is '$MODE'; use customHandler or isolated" >&2
  exit 2
fi
if ! command -v az >/dev/null 2>&1; then
  echo "error: the Azure CLI (az) is not installed; see https://learn.microsoft.com/cli/azure/install-azure-cli" >&2
  exit 1
fi
if ! az account show >/dev/null 2>&1; then
  echo "error: the Azure CLI is not logged in; run 'az login' (and 'az account set -s <subscription>')" >&2
  exit 1
fi

# The PostgreSQL administrator password is generated once per resource group and reused, so a
# second run does not rotate it under the running app. It lives only here (git-ignored) and, for
# the app, in Key Vault.
SECRETS_DIR=".azure"
SECRETS="$SECRETS_DIR/$RG.env"
mkdir -p "$SECRETS_DIR"
chmod 700 "$SECRETS_DIR"
if [ ! -f "$SECRETS" ]; then
  umask 077
  echo "POSTGRES_ADMIN_PASSWORD=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)Aa1-" >"$SECRETS"
fi
# shellcheck disable=SC1090
. "$SECRETS"
# The function key the start responses put in their URIs (code=): generated once, like the password.
if [ -z "${INSTANCE_URI_KEY:-}" ]; then
  umask 077
  INSTANCE_URI_KEY="$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 40)"
  echo "INSTANCE_URI_KEY=$INSTANCE_URI_KEY" >>"$SECRETS"
fi

echo "== resource group $RG ($LOCATION)"
az group create --name "$RG" --location "$LOCATION" --output none

echo "== infrastructure (infra/main.bicep)"
az deployment group create --resource-group "$RG" --name durableagents \
  --template-file infra/main.bicep --parameters infra/main.bicepparam \
  --parameters postgresAdminPassword="$POSTGRES_ADMIN_PASSWORD" location="$LOCATION" hostingMode="$MODE" instanceUriKey="$INSTANCE_URI_KEY" \
  --output none
APP="$(az deployment group show -g "$RG" -n durableagents --query properties.outputs.functionAppName.value -o tsv)"
URL="$(az deployment group show -g "$RG" -n durableagents --query properties.outputs.appUrl.value -o tsv)"

echo "== package ($MODE)"
bash scripts/package.sh artifacts/durableagents.zip "$MODE"

echo "== deploy to $APP"
az functionapp deployment source config-zip --resource-group "$RG" --name "$APP" --src artifacts/durableagents.zip --output none

# The same key on the functions behind the instance routes only (never a host or master key).
if [ "$MODE" = "isolated" ]; then
  INSTANCE_FUNCTIONS="GetInstance RaiseEvent Terminate Suspend Resume Purge"
else
  INSTANCE_FUNCTIONS="api-instances"
fi
for fn in $INSTANCE_FUNCTIONS; do
  az functionapp function keys set --resource-group "$RG" --name "$APP" --function-name "$fn" \
    --key-name instance-uris --key-value "$INSTANCE_URI_KEY" --output none
done

echo "app: $URL"
