// Refusals of the legacy .flist reader: one line naming the file and, where
// there is one, the path inside the tree.
import { FlFileError } from '../errors.ts';

/** A .flist that cannot be read: not a tar, cut short, no database inside, a damaged entry. */
export class LegacyFlistError extends FlFileError {
  override name = 'LegacyFlistError';
}

/** Neither an SQLite .fl nor a tar(.gz) .flist, judged by the first bytes. */
export class UnknownFlistFormatError extends FlFileError {
  override name = 'UnknownFlistFormatError';
  constructor(file: string) {
    super(file, 'not an flist: neither an SQLite .fl (rfs) nor a tar or tar.gz .flist (0-flist); check the path');
  }
}
