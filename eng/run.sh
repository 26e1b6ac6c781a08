#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs Vigil's main sensor on its defaults:
#   bash eng/run.sh            # = vigil watch tcp (all non-loopback interfaces, auto hook)
#   bash eng/run.sh --port 443 # any `vigil watch tcp` options
set -euo pipefail
cd "$(dirname "$0")/.."
bash eng/install-deps.sh
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build src/Vigil.Cli -c Release -nologo -v quiet -clp:ErrorsOnly
exec src/Vigil.Cli/bin/Release/net10.0/vigil watch tcp "$@"
