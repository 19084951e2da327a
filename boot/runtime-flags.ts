// Node flags for the process that runs the boot server (`zeroboot serve`).
// V8 grows the young generation to tens of MiB during a burst of traffic
// (thousands of connections at once) and keeps it, so RSS stayed ~90 MB
// above its baseline after the clients left. With 2 MiB semi-spaces it is
// back within ~40 MB in seconds (bench/http-abuse.ts), and each scavenge is
// shorter, which is what a DHCP reply waits behind. bin/zeroboot passes the
// same flags for `serve`; test/unit/runtime-flags.test.ts keeps the two equal.
export const SERVE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
