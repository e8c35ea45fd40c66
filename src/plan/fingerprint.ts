/**
 * The inputs' fingerprint: a digest over everything that shapes the layers and nothing else — the store directory,
 * the strategy and max, the customisation entries, the closure (every item's path, NAR size and references), and
 * the root system's listing when there is one.
 * Nothing machine-specific goes in: not the store root or config location (host paths), not `layers.previous` (a
 * plan that names its own file as previous would otherwise never match itself), not times, not NAR hashes (which
 * only some closure sources know, and a store path already changes with its content).
 */
import type { PlanBase } from "./types.ts";
import { specPlatform } from "../oci/platform.ts";
import type { ImageSpec } from "../config/schema.ts";
import type { Closure } from "../store/types.ts";
import { customEntries } from "./custom.ts";
import { sha256Digest } from "../util/digest.ts";

/** Bumped when the fingerprinted data changes shape, so old fingerprints never match by accident. */
const FINGERPRINT_SCHEME = 1;

/** `sha256:<hex>` of the layer-shaping inputs. Throws PlanError when the spec's customisation entries are invalid. */
export function planFingerprint(spec: ImageSpec, closure: Closure, base?: PlanBase): string {
  const data = {
    scheme: FINGERPRINT_SCHEME,
    storeDir: closure.store.dir,
    strategy: spec.layers.strategy,
    max: spec.layers.max,
    roots: closure.roots,
    profile: closure.profile ?? null,
    entries: customEntries(spec, closure),
    items: closure.items.map((it) => [it.path, it.narSize, it.references]),
    // The root system's listing (its host paths left out), only when there is one, so other fingerprints stay put.
    ...(closure.rootSystem
      ? {
          rootSystem: [
            closure.rootSystem.source,
            closure.rootSystem.entries.map((e) => [e.path, e.type, e.mode, e.size, e.target ?? null, e.uid, e.gid, e.devmajor ?? null, e.devminor ?? null]),
          ],
        }
      : {}),
    platform: specPlatform(spec),
    // The base image by its ID and layers, only when there is one.
    ...(base ? { base: [base.id, base.layers.map((l) => l.digest), base.items] } : {}),
  };
  // Arrays and plain objects built above in a fixed key order: JSON.stringify is canonical here.
  return sha256Digest(JSON.stringify(data));
}
