/** Graph walks the layering strategies share. */
import { PlanError } from "../errors.ts";
import type { StoreItem } from "../store/types.ts";

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
