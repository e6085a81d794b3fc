// Validates glTF/GLB files with the Khronos glTF-Validator.
// Usage: node validate.mjs FILE...   Prints each report; exits 1 if any file has an error, 2 on bad usage.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import validator from 'gltf-validator';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node validate.mjs FILE.glb|FILE.gltf ...');
  process.exit(2);
}

let failed = 0;
for (const file of files) {
  try {
    const data = new Uint8Array(await readFile(file));
    const report = await validator.validateBytes(data, {
      uri: path.basename(file),
      maxIssues: 200,
      // External buffers and images resolve next to the file, as a viewer would.
      externalResourceFunction: (uri) =>
        readFile(path.join(path.dirname(file), decodeURIComponent(uri))).then((b) => new Uint8Array(b)),
    });
    const { numErrors, numWarnings, numInfos, numHints } = report.issues;
    console.log(`${file}: ${numErrors} errors, ${numWarnings} warnings, ${numInfos} infos, ${numHints} hints`);
    for (const m of report.issues.messages) {
      console.log(`  [${['error', 'warning', 'info', 'hint'][m.severity]}] ${m.code} ${m.pointer ?? ''}: ${m.message}`);
    }
    if (numErrors > 0) failed += 1;
  } catch (e) {
    console.log(`${file}: cannot be validated: ${e?.message ?? e}`);
    failed += 1;
  }
}
if (failed > 0) {
  console.error(`${failed} of ${files.length} files have glTF errors`);
  process.exit(1);
}
