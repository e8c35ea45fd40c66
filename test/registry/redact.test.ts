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
