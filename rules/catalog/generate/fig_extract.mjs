// Extract command grammars from the @withfig/autocomplete package into compact JSON.
//
//   node fig_extract.mjs PACKAGE_DIR NAMES_FILE OUT.json
//
// PACKAGE_DIR is an installed @withfig/autocomplete (its build/ directory holds one
// ES module per program). NAMES_FILE lists the programs to extract, one a line.
// Generators, descriptions and icons are dropped: only what decides how a command
// line parses is kept (see rules/catalog/README.md for the node format).
import { readFileSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [pkg, namesFile, out] = process.argv.slice(2);
const build = join(pkg, "build");
const names = readFileSync(namesFile, "utf8").split("\n").map((s) => s.trim()).filter((s) => s && !s.startsWith("#"));
const version = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).version;

function versioned(path) {
  // Specs kept per version (az/2.53.0.js): the newest one.
  const dir = join(build, path);
  if (!existsSync(join(dir, "index.js"))) return null;
  const files = readdirSync(dir).filter((f) => /^\d[\d.]*\.js$/.test(f));
  files.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  return files.length ? join(path, files[files.length - 1].replace(/\.js$/, "")) : null;
}

async function load(path) {
  let file = join(build, path + ".js");
  if (!existsSync(file)) {
    const newest = versioned(path);
    if (!newest) return null;
    file = join(build, newest + ".js");
  }
  const mod = await import(pathToFileURL(file).href);
  let spec = mod.default;
  if (typeof spec === "function") {
    try { spec = spec(); } catch { return null; }
  }
  return spec;
}

// Cloud CLIs with thousands of operations: below the service, keep the operation names
// only (their options all take one value; the catalog reads them leniently), except for
// the services named here, whose options matter.
const TREE_ONLY = { aws: ["s3", "configure"], gcloud: ["storage", "auth", "config"], az: ["account"] };

const asList = (x) => (x === undefined || x === null ? [] : Array.isArray(x) ? x : [x]);

function argKind(arg) {
  if (!arg || typeof arg !== "object") return "v";
  const templates = asList(arg.template);
  if (arg.isCommand) return "c";
  if (arg.isScript) return "x";
  if (arg.isModule) return "m";
  if (templates.includes("folders") && !templates.includes("filepaths")) return "d";
  if (templates.includes("filepaths")) return "p";
  return "v";
}

function argCode(arg) {
  let code = argKind(arg);
  if (arg && arg.isVariadic) code += "*";
  if (arg && arg.isOptional) code += "?";
  return code;
}

async function node(spec, depth, keep = true) {
  const result = {};
  const options = {};
  for (const option of keep ? asList(spec.options) : []) {
    if (!option || typeof option !== "object") continue;
    const args = asList(option.args);
    let code = "";
    if (args.length) {
      code = args.map(argCode).join(",");
      if (option.requiresSeparator || option.requiresEquals) code += "=";
    }
    if (option.isPersistent) code += "+";
    const spellings = asList(option.name).filter((n) => typeof n === "string" && n.startsWith("-") && n.length <= 64 && !n.includes("|"));
    if (spellings.length) options[spellings.join("|")] = code;
  }
  if (Object.keys(options).length) result.o = options;
  const args = asList(spec.args).map(argCode);
  if (args.length) result.a = args;
  const directives = spec.parserDirectives || {};
  let flags = "";
  if (directives.flagsArePosixNoncompliant) flags += "P";
  if (directives.optionsMustPrecedeArguments) flags += "F";
  if (flags) result.f = flags;
  const subs = {};
  for (const sub of asList(spec.subcommands)) {
    if (!sub || typeof sub !== "object" || depth > 8) continue;
    let child = sub;
    if (typeof sub.loadSpec === "string" && !sub.subcommands && !sub.options) {
      const loaded = await load(sub.loadSpec);
      if (loaded) child = { ...loaded, ...sub, subcommands: loaded.subcommands, options: loaded.options, args: loaded.args };
    }
    const names = asList(sub.name).filter((n) => typeof n === "string");
    if (!names.length) continue;
    const built = await node(child, depth + 1, keep && !(depth === 0 && treeOnly && !treeOnly.includes(names[0])));
    subs[names[0]] = built;
    for (const alias of names.slice(1)) subs[alias] = { "=": names[0] };
  }
  if (Object.keys(subs).length) result.s = subs;
  return result;
}

const programs = {};
const missing = [];
let treeOnly = null;
for (const name of names) {
  const spec = await load(name);
  if (!spec) { missing.push(name); continue; }
  treeOnly = TREE_ONLY[name] || null;
  programs[name] = await node(spec, 0);
}
writeFileSync(out, JSON.stringify({ source: "@withfig/autocomplete", version, license: "MIT", programs }));
console.error(`${Object.keys(programs).length} programs extracted; not in the package: ${missing.join(" ")}`);
