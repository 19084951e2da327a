// A request the registry's task side refuses, with the HTTP status that
// says why (429 a limit, 409 a conflict, 503 full, 404...); the message is
// the one line the client reads.
export class Refusal extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'Refusal';
    this.status = status;
  }
}
