// Node flags for the process that runs the node agent (`zeroboot agent`),
// which idles between a report a minute. Measured with bench/agent-rss.ts
// on the image form: RSS 72-80 -> 62 MB, peak 79 -> 62 MB, idle CPU and
// bring-up CPU unchanged.
/** 1 MiB semi-spaces: V8 otherwise grows the young generation at bring-up and keeps it. */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];
/**
 * Where the sources are JavaScript (the image's /usr/bin/zeroboot, see
 * image/node-runtime.ts), also --lite-mode: no optimizing compiler, feedback
 * vectors allocated lazily, V8 tuned for size. Lite mode has no
 * WebAssembly, which Node's type stripper needs, so bin/zeroboot (running
 * the .ts sources) passes only AGENT_NODE_FLAGS. The zdbs the agent starts
 * inherit neither.
 */
export const AGENT_JS_NODE_FLAGS: readonly string[] = [...AGENT_NODE_FLAGS, '--lite-mode'];
