/** Orders strings by their UTF-8 bytes (as GNU tar --sort=name and the store databases do), not by UTF-16 units. */
export const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));
