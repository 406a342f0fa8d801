#!/usr/bin/env node
// The handprop CLI. The sources are TypeScript; tsx compiles them on load so the checkout runs as is.
import { register } from "tsx/esm/api";
register();
const { main } = await import("../src/cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
