/**
 * `accounts`: the image's /etc/passwd and /etc/group, merged with the root system's when it has them (its lines are
 * kept verbatim, first), and the `User` that `runAs` names. Pure: the root system's files come from the closure.
 */
import { PlanError } from "../errors.ts";
import type { Accounts, ImageSpec } from "../config/schema.ts";
import type { Closure } from "../store/types.ts";

interface UserLine {
  name: string;
  uid: number;
  gid: number;
  /** Where it comes from, for error messages. */
  origin: string;
}

interface GroupLine {
  name: string;
  gid: number;
  origin: string;
}

export interface AccountFiles {
  passwd: string;
  group: string;
}

function lines(text: string | undefined): string[] {
  if (text === undefined) return [];
  return text.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"));
}

function parsePasswd(text: string | undefined, source: string): UserLine[] {
  return lines(text).map((line, i) => {
    const f = line.split(":");
    return { name: f[0] ?? "", uid: Number(f[2]), gid: Number(f[3]), origin: `${source} line ${i + 1}` };
  });
}

function parseGroup(text: string | undefined, source: string): GroupLine[] {
  return lines(text).map((line, i) => {
    const f = line.split(":");
    return { name: f[0] ?? "", gid: Number(f[2]), origin: `${source} line ${i + 1}` };
  });
}

const ROOT_USER = "root:x:0:0:root:/root:/bin/sh";
const ROOT_GROUP = "root:x:0:";

/**
 * The passwd and group files `accounts` asks for, or undefined without `accounts`. Throws PlanError for a user,
 * uid, group or gid defined twice (naming both places), and for a group member that is no user.
 */
export function accountFiles(spec: Pick<ImageSpec, "accounts">, closure: Pick<Closure, "rootSystem">): AccountFiles | undefined {
  const accounts = spec.accounts;
  if (accounts === undefined) return undefined;
  const rs = closure.rootSystem;
  const passwdSource = `the root system's /etc/passwd (${rs?.source})`;
  const groupSource = `the root system's /etc/group (${rs?.source})`;
  const users = parsePasswd(rs?.passwd, passwdSource);
  const groups = parseGroup(rs?.group, groupSource);
  const passwdLines = lines(rs?.passwd);
  const groupLines = lines(rs?.group);

  // An image with accounts but no root system still gets a root user and group, as every passwd has.
  const definesRoot = accounts.users.some((u) => u.uid === 0 || u.name === "root");
  if (rs?.passwd === undefined && !definesRoot) {
    users.push({ name: "root", uid: 0, gid: 0, origin: "the default root user" });
    passwdLines.push(ROOT_USER);
  }
  if (rs?.group === undefined && !accounts.groups.some((g) => g.gid === 0 || g.name === "root")) {
    groups.push({ name: "root", gid: 0, origin: "the default root group" });
    groupLines.push(ROOT_GROUP);
  }

  accounts.users.forEach((u, i) => {
    const origin = `accounts.users[${i}] (${u.name})`;
    const byName = users.find((x) => x.name === u.name);
    if (byName) throw new PlanError(`${origin}: user ${u.name} is defined twice: ${byName.origin} already defines it`);
    const byUid = users.find((x) => x.uid === u.uid);
    if (byUid) throw new PlanError(`${origin}: uid ${u.uid} is used twice: ${byUid.origin} (${byUid.name}) already has it`);
    const gid = u.gid ?? u.uid;
    users.push({ name: u.name, uid: u.uid, gid, origin });
    passwdLines.push(`${u.name}:x:${u.uid}:${gid}:${u.comment}:${u.home}:${u.shell}`);
  });

  accounts.groups.forEach((g, i) => {
    const origin = `accounts.groups[${i}] (${g.name})`;
    const byName = groups.find((x) => x.name === g.name);
    if (byName) throw new PlanError(`${origin}: group ${g.name} is defined twice: ${byName.origin} already defines it`);
    const byGid = groups.find((x) => x.gid === g.gid);
    if (byGid) throw new PlanError(`${origin}: gid ${g.gid} is used twice: ${byGid.origin} (${byGid.name}) already has it`);
    for (const m of g.members) {
      if (!users.some((u) => u.name === m)) throw new PlanError(`${origin}: member ${m} is not a user; define it in accounts.users`);
    }
    groups.push({ name: g.name, gid: g.gid, origin });
  });
  const ownGroups = accounts.groups.map((g) => `${g.name}:x:${g.gid}:${g.members.join(",")}`);

  // A user whose primary gid no group has gets a group of its own name (as useradd does).
  accounts.users.forEach((u, i) => {
    const gid = u.gid ?? u.uid;
    if (groups.some((g) => g.gid === gid)) return;
    const origin = `accounts.users[${i}] (${u.name})`;
    const clash = groups.find((g) => g.name === u.name);
    if (clash) {
      throw new PlanError(`${origin}: no group has gid ${gid}, and the group ${u.name} that would be made for it is taken by ${clash.origin} (gid ${clash.gid}); define the group`);
    }
    groups.push({ name: u.name, gid, origin: `the group made for ${origin}` });
    ownGroups.push(`${u.name}:x:${gid}:`);
  });

  return { passwd: [...passwdLines, ""].join("\n"), group: [...groupLines, ...ownGroups, ""].join("\n") };
}

/** The image's `User`: `uid:gid` of `accounts.runAs`, else the spec's `user`. Throws PlanError for an unknown user. */
export function imageUser(spec: Pick<ImageSpec, "accounts" | "user">, closure: Pick<Closure, "rootSystem">): string {
  const runAs = spec.accounts?.runAs;
  if (runAs === undefined) return spec.user;
  const accounts = spec.accounts as Accounts;
  const own = accounts.users.find((u) => u.name === runAs);
  if (own) return `${own.uid}:${own.gid ?? own.uid}`;
  const rs = closure.rootSystem;
  const found = parsePasswd(rs?.passwd, "root system").find((u) => u.name === runAs);
  if (found && Number.isInteger(found.uid) && Number.isInteger(found.gid)) return `${found.uid}:${found.gid}`;
  const known = [...accounts.users.map((u) => u.name), ...parsePasswd(rs?.passwd, "").map((u) => u.name)];
  throw new PlanError(
    `accounts.runAs: ${runAs} is not a defined user; define it in accounts.users${known.length > 0 ? ` (defined: ${known.join(", ")})` : ""}`,
  );
}
