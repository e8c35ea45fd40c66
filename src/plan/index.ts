/**
 * The plan stage: `(spec, closure) -> LayerPlan`, a pure, deterministic function (no I/O, clock or environment;
 * inputs never mutated). Store layers come first, bottom of the image first, then the customisation layer.
 * `layers.max` counts every layer, the customisation layer included; max 1 puts everything in one layer, a
 * store layer that also carries the customisation `entries`.
 */
import { aboutConfigKey, PlanError } from "../errors.ts";
import type { ImageSpec } from "../config/schema.ts";
import type { Closure, StoreItem } from "../store/types.ts";
import { customEntries } from "./custom.ts";
import { STRATEGY_IMPLEMENTATIONS, type LayerStrategy } from "./strategies.ts";
import { STRATEGY_NAMES } from "../config/strategies.ts";
import { stickyOrFresh, stickyStoreLayers } from "./sticky.ts";
import type { PlanBase, LayerPlan, PlannedLayer, RootSystemLayer, StoreLayer } from "./types.ts";
import { byBytes } from "../util/bytes.ts";
import { specPlatform } from "../oci/platform.ts";

export { customEntries, resolveEntrypoint, comparePaths } from "./custom.ts";
export { accountFiles, imageUser } from "./accounts.ts";
export { orderBySize, ownLayerCount } from "./size.ts";
export { orderByPopularity, popularityContest, packageNameKey } from "./popularity.ts";
export { groupBySharing } from "./sharing.ts";
export { planToYaml, planToJson, parsePlan } from "./serialize.ts";
export { planFingerprint } from "./fingerprint.ts";
export { stickyStoreLayers, validPreviousLayers } from "./sticky.ts";
export { STRATEGY_IMPLEMENTATIONS, type LayerStrategy, type StoreGroup } from "./strategies.ts";


/** Checks what the planner relies on: integral sizes, unique paths, every item directly in the store dir. */
export function checkClosure(closure: Closure): void {
  const dir = closure.store.dir;
  const seen = new Set<string>();
  for (const it of closure.items) {
    const name = it.path.startsWith(dir + "/") ? it.path.slice(dir.length + 1) : "";
    if (name === "" || name.includes("/") || name === "." || name === "..") {
      throw new PlanError(`closure item ${it.path} is not a store item directly under the store directory ${dir}`);
    }
    if (!Number.isSafeInteger(it.narSize) || it.narSize < 0) {
      throw new PlanError(`closure item ${it.path} has size ${it.narSize}; sizes must be non-negative integers (NAR bytes)`);
    }
    if (seen.has(it.path)) throw new PlanError(`the closure lists ${it.path} twice; the resolve stage must give each item once`);
    seen.add(it.path);
  }
}

function storeLayer(items: readonly StoreItem[], reason: string): StoreLayer {
  const sorted = [...items].sort((a, b) => byBytes(a.path, b.path));
  return {
    kind: "store",
    size: sorted.reduce((sum, it) => sum + it.narSize, 0),
    reason,
    items: sorted.map((it) => ({ path: it.path, size: it.narSize })),
  };
}

/** The store layers of `items` by the spec's strategy; one store layer fewer than max: the customisation layer is the last. */
function storeLayers(spec: ImageSpec, items: readonly StoreItem[]): StoreLayer[] {
  return strategyOf(spec).group(items, spec.layers.max - 1).map((g) => storeLayer(g.items, g.reason));
}

/** A PlanError about layers.max (its message starts with the key): the pipeline gives the key's line:column. */
const maxError = (message: string) => aboutConfigKey(new PlanError(message), ["layers", "max"]);

function strategyOf(spec: ImageSpec): LayerStrategy {
  const s = STRATEGY_IMPLEMENTATIONS[spec.layers.strategy];
  if (!s) throw new PlanError(`layers.strategy: unknown strategy "${spec.layers.strategy as string}"; use ${STRATEGY_NAMES.join(", ")}`);
  return s;
}

/** The strategy's store layers for `items` in at most `budget` (>= 1) layers: sticky and family plans place items with it. */
export function placeItems(spec: ImageSpec, items: readonly StoreItem[], budget: number): StoreLayer[] {
  return storeLayers({ ...spec, layers: { ...spec.layers, max: budget + 1 } }, items);
}

const stickyOptions = (spec: ImageSpec) => ({ regroupSurvivors: strategyOf(spec).regroupSurvivors });
const realignOf = (spec: ImageSpec) => strategyOf(spec).realign;

export interface PlanOptions {
  /** Sticky planning (src/plan/sticky.ts): keep this plan's grouping wherever it is still valid. Read by the caller. */
  previous?: LayerPlan;
  /** The base image (`base:`): its layers come first and count toward max; closure items at `paths` are not packed. */
  base?: Omit<PlanBase, "items"> & { paths: readonly string[] };
}

/** The closure without the items the base image holds (and references to them), and the plan's record of the base. */
function withoutBase(closure: Closure, base: PlanOptions["base"]): { closure: Closure; record?: PlanBase } {
  if (!base) return { closure };
  const held = new Set(base.paths);
  const items = closure.items.filter((it) => !held.has(it.path)).map((it) => ({ ...it, references: it.references.filter((r) => !held.has(r)) }));
  const record = { image: base.image, id: base.id, layers: base.layers, items: closure.items.filter((it) => held.has(it.path)).map((it) => it.path) };
  return { closure: { ...closure, items }, record };
}

function rootSystemLayer(spec: ImageSpec, closure: Closure): RootSystemLayer | undefined {
  if (spec.rootSystem === undefined) return undefined;
  const rs = closure.rootSystem;
  if (!rs) throw new PlanError("rootSystem: the closure has no listing of the root system; resolve it with resolveClosure, which reads it");
  return { kind: "root-system", source: rs.source, files: rs.entries.length, size: rs.entries.reduce((n, e) => n + e.size, 0) };
}

/** Plans the image's layers; throws PlanError when the spec and closure cannot make a valid image. */
export function planLayers(spec: ImageSpec, fullClosure: Closure, options: PlanOptions = {}): LayerPlan {
  const given = spec.layers.max;
  if (!Number.isInteger(given) || given < 1) throw maxError(`layers.max: ${given} must be a whole number of at least 1`);
  checkClosure(fullClosure);
  const entries = customEntries(spec, fullClosure);
  const { closure, record: base } = withoutBase(fullClosure, options.base);
  // The base's layers count toward max; what is left must hold a store layer and the customisation layer.
  const max = given - (base?.layers.length ?? 0);
  if (base && max < 2) {
    throw maxError(`layers.max: ${given} leaves no room on the base image ${base.image}, which has ${base.layers.length} layers; raise it to at least ${base.layers.length + 2}`);
  }
  spec = max === given ? spec : { ...spec, layers: { ...spec.layers, max } };
  const rootLayer = rootSystemLayer(spec, closure);
  let layers: PlannedLayer[];
  if (rootLayer) {
    // The root-system layer counts toward max: it sits between the store layers and the customisation layer.
    if (max < 3) throw maxError(`layers.max: ${max} is too small with a rootSystem: it needs at least 3 layers (store, root system, customisation)`);
    const storeSpec = { ...spec, layers: { ...spec.layers, max: max - 1 } };
    const { previous } = options;
    const store = previous
      ? stickyOrFresh(previous, stickyStoreLayers(closure.items, previous, max - 2, (free, budget) => placeItems(spec, free, budget), stickyOptions(spec)), () => storeLayers(storeSpec, closure.items), realignOf(spec))
      : storeLayers(storeSpec, closure.items);
    layers = [...store, rootLayer, { kind: "customisation", entries }];
  } else if (max === 1) {
    const single = storeLayer(closure.items, "max 1 layer: the whole closure and the customisation entries");
    layers = [{ ...single, entries }];
  } else {
    const { previous } = options;
    // Free items are placed by the strategy as if the image had the store layers left, plus the customisation one.
    const store = previous
      ? stickyOrFresh(previous, stickyStoreLayers(closure.items, previous, max - 1, (free, budget) => placeItems(spec, free, budget), stickyOptions(spec)), () => storeLayers(spec, closure.items), realignOf(spec))
      : storeLayers(spec, closure.items);
    layers = [...store, { kind: "customisation", entries }];
  }
  return {
    version: 1,
    name: spec.name,
    storeDir: closure.store.dir,
    strategy: spec.layers.strategy,
    max: given,
    platform: specPlatform(spec),
    ...(base ? { base } : {}),
    layers,
    totals: {
      items: closure.items.length,
      bytes: closure.items.reduce((sum, it) => sum + it.narSize, 0),
      layers: layers.length,
    },
  };
}
