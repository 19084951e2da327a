// Raw terminal output (a serial console on a pseudo-terminal) as plain
// text: escape sequences and control characters removed, carriage returns
// turned into line ends, so console lines can be matched and shown as text.
/** Terminal escape sequences (CSI incl. private "=3h" forms, OSC, charset and single-character ones). */
const ESCAPES = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()*+][0-9A-Za-z]|[@-Z\\-_=>c78])/g;
/** A trailing escape sequence that may continue in the next chunk. */
const PARTIAL_ESCAPE = /\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*|[()*+])?$/;
/** Control characters other than newline and tab. */
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f]/g;

/** Turns raw terminal output into plain text; returns the text and what must wait for more input. */
export function cleanTerminalText(raw: string): { text: string; rest: string } {
  let rest = '';
  const partial = PARTIAL_ESCAPE.exec(raw);
  if (partial && partial[0].length < 64) {
    rest = partial[0];
    raw = raw.slice(0, partial.index);
  }
  if (raw.endsWith('\r')) {
    rest = '\r' + rest;
    raw = raw.slice(0, -1);
  }
  const text = raw.replace(ESCAPES, '').replace(/\r+\n/g, '\n').replace(/\r/g, '\n').replace(CONTROLS, '');
  return { text, rest };
}
