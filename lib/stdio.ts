// A server's output may go to a pipe whose reader goes away (`| head`, a log
// collector that died). Node then reports EPIPE as an 'error' event on the
// stream, and an unhandled one ends the process with a stack trace. Losing
// the output must not stop the server: from then on that stream's output is
// dropped, and any other stream error still ends the process as before.
const LOST_OUTPUT = new Set(['EPIPE', 'ERR_STREAM_DESTROYED']);

export function keepRunningWhenOutputCloses(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (LOST_OUTPUT.has(e.code ?? '')) return;
      throw e;
    });
  }
}
