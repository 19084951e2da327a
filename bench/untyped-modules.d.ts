// Declarations for the two benchmark candidates that ship no types.
declare module 'blakejs' {
  const blakejs: { blake2b(input: Uint8Array, key?: Uint8Array, outlen?: number): Uint8Array };
  export default blakejs;
}
declare module 'snappyjs' {
  const snappyjs: { compress(input: Uint8Array): Uint8Array; uncompress(input: Uint8Array): Uint8Array };
  export default snappyjs;
}
