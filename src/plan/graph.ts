/** Graph walks the layering strategies share. */
import { PlanError } from "../errors.ts";
import type { StoreItem } from "../store/types.ts";

/**
 * The closure as an index graph: `children[i]` are the items `items[i]` refers to (self references dropped, sorted),
 * `referenced[i]` whether anything refers to it. A duplicate item or a reference outside the closure is a PlanError.
 */
export function indexGraph(items: readonly StoreItem[]): { children: number[][]; referenced: Uint8Array } {
  const index = new Map<string, number>();
  items.forEach((it, i) => {
    if (index.has(it.path)) throw new PlanError(`the closure lists ${it.path} twice; the resolve stage must give each item once`);
    index.set(it.path, i);
  });
  const referenced = new Uint8Array(items.length);
  const children = items.map((it, i) => {
    const out = new Set<number>();
    for (const ref of it.references) {
      const j = index.get(ref);
      if (j === undefined) throw new PlanError(`${it.path} refers to ${ref}, which is not in the closure; resolve the closure again`);
      if (j !== i) {
        out.add(j);
        referenced[j] = 1;
      }
    }
    return [...out].sort((a, b) => a - b);
  });
  return { children, referenced };
}

/** Iterative depth-first post-order over all items; a reference cycle is a PlanError naming it. */
export function postOrder(items: readonly StoreItem[], children: number[][]): number[] {
  const state = new Uint8Array(items.length); // 0 new, 1 on the stack, 2 done
  const order: number[] = [];
  for (let start = 0; start < items.length; start++) {
    if (state[start]) continue;
    const stack: { node: number; next: number }[] = [{ node: start, next: 0 }];
    state[start] = 1;
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const kids = children[top.node]!;
      if (top.next < kids.length) {
        const c = kids[top.next++]!;
        if (state[c] === 1) {
          const cycle = stack.slice(stack.findIndex((f) => f.node === c)).map((f) => items[f.node]!.path);
          throw new PlanError(`reference cycle in the closure: ${[...cycle, items[c]!.path].join(" -> ")}; store items cannot refer to each other in a loop`);
        }
        if (state[c] === 0) {
          state[c] = 1;
          stack.push({ node: c, next: 0 });
        }
      } else {
        state[top.node] = 2;
        order.push(top.node);
        stack.pop();
      }
    }
  }
  return order;
}
