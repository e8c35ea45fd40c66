/**
 * Reading a file a user names (a plan file, a references graph, an auth file): symlinks are followed, as for any
 * file a user names, but it must be a regular file of bounded size. O_NONBLOCK keeps a FIFO from blocking the open,
 * and the type is taken from the opened file, so /dev/zero or a FIFO is refused instead of read for ever.
 */
import * as fs from "node:fs";
import { fileKind, mib } from "./format.ts";

/** The file's text; Node's own errors (ENOENT, EACCES) as they come, an Error saying what is wrong otherwise. */
export function readUserFile(file: string, max: number): string {
  return readUserBytes(file, max).toString("utf8");
}

/** The file's bytes, with readUserFile's checks. */
export function readUserBytes(file: string, max: number): Buffer {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new Error(`it is ${fileKind(st)}, not a regular file`);
    if (st.size > max) throw new Error(`it is ${mib(st.size)}, over the ${mib(max)} limit`);
    const buf = Buffer.allocUnsafe(st.size + 1);
    let got = 0;
    for (let n; got < buf.length && (n = fs.readSync(fd, buf, got, buf.length - got, got)) > 0; ) got += n;
    if (got > max) throw new Error(`it grew past the ${mib(max)} limit while it was read`);
    return buf.subarray(0, got);
  } finally {
    fs.closeSync(fd);
  }
}
