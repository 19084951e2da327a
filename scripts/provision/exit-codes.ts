// The provisioning script's exit codes: one per failed check or step, so a
// farmer's automation can tell them apart (docs/farmer.md lists them).
export const EXIT = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  badCsv: 3,
  noInterface: 10,
  noAddress: 11,
  portBusy: 12,
  probeFailed: 13,
  dhcpConflict: 14,
  imageBuild: 20,
  badConfig: 21,
  service: 22,
  serverExited: 23,
  timeout: 30,
} as const;

export type ExitName = keyof typeof EXIT;

/** A failed check or step: one line for the farmer and the exit code that names it. */
export class ProvisionError extends Error {
  override name = 'ProvisionError';
  readonly exit: ExitName;
  constructor(exit: ExitName, message: string) {
    super(message);
    this.exit = exit;
  }

  get code(): number {
    return EXIT[this.exit];
  }
}
