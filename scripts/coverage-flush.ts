// Preloaded by scripts/coverage.sh into every Node process of the test run:
// writes the V8 coverage gathered so far every 2 s, so that servers the
// tests end with SIGKILL still count (Node writes it only on a normal exit).
// Each write resets the counters; the report unites all of them.
import { takeCoverage } from 'node:v8';

if (process.env.NODE_V8_COVERAGE && !process.argv[1]?.includes('/node_modules/')) {
  setInterval(() => takeCoverage(), 2000).unref();
}
