// openapi/<service>.json -> src/lib/api-schema/<service>.d.ts (the documents come from
// `scripts/export_openapi.py`; `make api-types` runs both). The output is committed so that
// typecheck and build need no Python. `--out DIR` writes elsewhere (the drift test compares).
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { argv } from "node:process";
import { pathToFileURL } from "node:url";
import openapiTS, { COMMENT_HEADER, astToString } from "openapi-typescript";

const outIndex = argv.indexOf("--out");
const source = new URL("../openapi/", import.meta.url);
const target = outIndex === -1 ? new URL("../src/lib/api-schema/", import.meta.url) : pathToFileURL(`${resolve(argv[outIndex + 1] ?? ".")}/`);
mkdirSync(target, { recursive: true });

for (const file of readdirSync(source).filter((name) => name.endsWith(".json")).sort()) {
  // FastAPI lists defaulted fields of response models as required already; a default on a request
  // field must keep it optional, which openapi-typescript's defaultNonNullable would undo.
  const ast = await openapiTS(new URL(file, source), { defaultNonNullable: false });
  const output = new URL(file.replace(/\.json$/, ".d.ts"), target);
  writeFileSync(output, COMMENT_HEADER + astToString(ast));
  console.log(`${file} -> ${output.pathname}`);
}
