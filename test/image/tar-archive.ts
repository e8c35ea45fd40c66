/** Builds a whole tar archive in memory from our headers, for the tar tests. */
import { encodeHeader, paddingFor, ZERO_BLOCKS, type TarHeader } from "../../src/image/tar.ts";

export interface Entry {
  h: TarHeader;
  data?: Buffer;
}

export function archive(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const { h, data } of entries) {
    parts.push(encodeHeader({ ...h, size: data?.length ?? h.size }));
    if (data) parts.push(data, Buffer.alloc(paddingFor(data.length)));
  }
  parts.push(ZERO_BLOCKS);
  return Buffer.concat(parts);
}
