// The embedded default: `npx layerpack build` in a fresh clone builds this image. The example store is assembled
// from this machine's own shell and C library (examples/make-store.ts) the first time the config is loaded.
import { defineConfig } from "layerpack";
import { makeExampleStore } from "./examples/make-store.ts";

const example = makeExampleStore(new URL("./examples/.store", import.meta.url).pathname);

export default defineConfig({
  name: "layerpack-example",
  tag: "latest",
  store: { dir: "/gnu/store", root: example.storeRoot },
  profile: example.profileLink,
  closure: { from: "scan" },
  symlinks: ["/bin=bin", "/lib=lib", "/lib64=lib"],
  entrypoint: "bin/hello",
  env: { LANG: "C.UTF-8" },
  layers: { max: 100, strategy: "sharing" },
  compression: "gzip",
  output: { format: "docker-archive", path: "./layerpack-example.tar" },
});
