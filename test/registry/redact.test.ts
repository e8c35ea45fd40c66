import { expect, test } from "vitest";
import { Secrets } from "../../src/registry/redact.ts";

const USER = "alice";
const PASSWORD = "correct-horse-battery";
const b64 = (s: string) => Buffer.from(s).toString("base64");

test("Secrets redacts every encoding, base64 at any offset, and short passwords inside user:password", () => {
  const secrets = new Secrets();
  secrets.add(PASSWORD, USER);
  secrets.add("pw", "bob");
  for (let pad = 0; pad < 3; pad++) {
    const blob = b64(`${"#".repeat(pad)}${USER}:${PASSWORD} and more`);
    // At most the characters shared with the neighbouring bytes are left of the secret's encoding.
    const [before, after, ...more] = secrets.redact(blob).split("[redacted]");
    expect(more).toEqual([]);
    expect(before!.length).toBeLessThanOrEqual(3);
    expect(after!.length).toBeLessThanOrEqual(b64(" and more").length + 3);
  }
  expect(secrets.redact(`a ${JSON.stringify({ p: PASSWORD })} ${encodeURIComponent(`x${PASSWORD}`)} ${Buffer.from(PASSWORD).toString("base64url")}`)).toBe(
    'a {"p":"[redacted]"} x[redacted] [redacted]',
  );
  expect(secrets.redact(`Basic ${b64("bob:pw")}; port 5000, pw`)).toBe("Basic [redacted]; port 5000, pw");
});

test("Secrets redacts the forms servers echo: lower-case and form percent-encoding, \\u escapes, JSON twice, Latin-1 mojibake, hex", () => {
  const pw = "p@ss w/örd!";
  const secrets = new Secrets();
  secrets.add(pw, "bob");
  const bytes = Buffer.from(pw);
  const echoed = [
    "p%40ss%20w%2f%c3%b6rd%21",
    "p%40ss+w%2F%C3%B6rd%21",
    "p%40ss+w%2F%C3%B6rd%21".toLowerCase(),
    new URLSearchParams({ s: pw }).toString().slice(2),
    "p@ss w/\\u00f6rd!",
    "p@ss w/\\u00F6rd!",
    JSON.stringify(JSON.stringify({ detail: pw })),
    bytes.toString("latin1"),
    bytes.toString("hex"),
    bytes.toString("hex").toUpperCase(),
  ];
  for (const e of echoed) expect(secrets.redact(`denied: ${e} (end)`), e).not.toContain("ss");
});
