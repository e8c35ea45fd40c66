import type { ImageSpecInput } from "./schema.ts";

/**
 * Identity helper for typed TS configs: `export default defineConfig({ ... })` gets completion and type errors
 * from the spec's input type. It does not validate; loadSpec does.
 */
export function defineConfig(config: ImageSpecInput): ImageSpecInput {
  return config;
}
