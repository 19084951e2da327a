// Node flags for the process that runs the node agent (`zeroboot agent`).
// The image's /usr/bin/zeroboot (image/node-runtime.ts) and bin/zeroboot
// pass them; measured with bench/agent-rss.ts.
export const AGENT_NODE_FLAGS: readonly string[] = [];
