#!/usr/bin/env node
// Compile contracts/src/*.sol with the pinned solcjs (standard JSON input, offline) into
// contracts/build/<Name>.json (abi + bytecode). Output is deterministic: the same sources and
// compiler give byte-identical artifacts, so `make contracts-check` can diff them.
"use strict";

const fs = require("fs");
const path = require("path");
const solc = require("solc");

const ROOT = path.resolve(__dirname, "..");
const SRC = path.join(ROOT, "src");
const BUILD = path.join(ROOT, "build");
const NODE_MODULES = path.join(ROOT, "node_modules");

function findImports(importPath) {
  // Only @openzeppelin/... imports are resolved, from the pinned node_modules package.
  if (importPath.startsWith("@openzeppelin/")) {
    const file = path.join(NODE_MODULES, importPath);
    if (file.startsWith(NODE_MODULES + path.sep) && fs.existsSync(file)) {
      return { contents: fs.readFileSync(file, "utf8") };
    }
  }
  return { error: `import not found: ${importPath}` };
}

const files = fs.readdirSync(SRC).filter((f) => f.endsWith(".sol")).sort();
const sources = {};
for (const f of files) {
  sources[`src/${f}`] = { content: fs.readFileSync(path.join(SRC, f), "utf8") };
}

const input = {
  language: "Solidity",
  sources,
  settings: {
    evmVersion: "cancun",
    optimizer: { enabled: true, runs: 200 },
    metadata: { bytecodeHash: "none" },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) {
  if (e.severity !== "error") process.stderr.write(e.formattedMessage);
}
if (errors.length) {
  for (const e of errors) process.stderr.write(e.formattedMessage);
  process.exit(1);
}

fs.mkdirSync(BUILD, { recursive: true });
const written = new Set();
for (const f of files) {
  const name = path.basename(f, ".sol");
  const contract = output.contracts[`src/${f}`][name];
  if (!contract) continue; // a file of interfaces only
  const artifact = {
    contractName: name,
    sourceName: `src/${f}`,
    compiler: `solc ${solc.version()}`,
    evmVersion: input.settings.evmVersion,
    optimizerRuns: input.settings.optimizer.runs,
    abi: contract.abi,
    bytecode: "0x" + contract.evm.bytecode.object,
    deployedBytecode: "0x" + contract.evm.deployedBytecode.object,
  };
  fs.writeFileSync(path.join(BUILD, `${name}.json`), JSON.stringify(artifact, null, 2) + "\n");
  written.add(`${name}.json`);
}
// Remove artifacts of contracts that no longer exist, so the build directory mirrors src/.
for (const f of fs.readdirSync(BUILD)) {
  if (f.endsWith(".json") && !written.has(f)) fs.unlinkSync(path.join(BUILD, f));
}
process.stdout.write(`compiled ${written.size} contracts with solc ${solc.version()}\n`);
