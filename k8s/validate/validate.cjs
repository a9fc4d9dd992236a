#!/usr/bin/env node
// Validates Kubernetes objects offline against the API's JSON schemas, as
// shipped by the npm package kubernetes-models (see package.json here).
//
//   node validate.cjs --deps DIR [--parse-only] [FILE|-]...
//
// DIR is a folder where `npm ci` ran with this folder's package.json and
// package-lock.json (tests/integration/test_k8s.py keeps one under
// ~/.cache/signal-node/k8s-validate). Each FILE (or stdin for `-`) is a YAML
// stream, for example the output of `kubectl kustomize`; JSON is YAML too.
//
// Prints one JSON object on stdout:
//   {"documents": [{"source", "index", "apiVersion", "kind", "name",
//                   "errors": [...], "object": {...}}, ...]}
// and exits 0 when every document is valid, 1 when one is not, 2 on bad
// usage or a YAML syntax error. --parse-only turns YAML into that JSON
// without validating (for kustomization.yaml and other non-objects).
//
// Checks, per document:
//   - apiVersion + kind name a top-level type the schemas know;
//   - the JSON schema (types, required fields, enums, formats);
//   - unknown fields, as `kubectl apply --validate=strict` would: the schemas
//     leave additionalProperties open, so the object is walked through a Proxy
//     while the schema's validator runs, and a key of a checked object that the
//     validator never looked at is not in the schema (a typo, or a field at the
//     wrong level). Maps (labels, ConfigMap data, ...) are iterated by the
//     validator, so all their keys count as known;
//   - metadata.name is set and is a DNS subdomain, label keys and values are
//     well-formed (the API server would refuse them; the schemas do not say).
"use strict";

const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

function usage(msg) {
  process.stderr.write(`validate.cjs: ${msg}\nusage: node validate.cjs --deps DIR [--parse-only] [FILE|-]...\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let deps = null;
let parseOnly = false;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--deps") deps = args[++i];
  else if (args[i].startsWith("--deps=")) deps = args[i].slice(7);
  else if (args[i] === "--parse-only") parseOnly = true;
  else if (args[i].startsWith("--")) usage(`unknown option ${args[i]}`);
  else files.push(args[i]);
}
if (!deps) usage("--deps DIR is required");
if (files.length === 0) files.push("-");

const req = createRequire(path.join(path.resolve(deps), "package.json"));
let YAML;
try {
  YAML = req("yaml");
  req("kubernetes-models/v1/Pod");
} catch (e) {
  usage(`cannot load the packages from ${deps} (run npm ci there): ${e.message}`);
}

// --- schema lookup ---------------------------------------------------------

const classes = new Map();
function modelClass(apiVersion, kind) {
  const key = `${apiVersion}|${kind}`;
  if (classes.has(key)) return classes.get(key);
  let cls = null;
  if (typeof apiVersion === "string" && typeof kind === "string" &&
      /^[a-z0-9.-]*\/?v[0-9]+[a-z0-9]*$/.test(apiVersion) && /^[A-Z][A-Za-z0-9]*$/.test(kind)) {
    try {
      const mod = req(`kubernetes-models/${apiVersion}/${kind}`);
      const c = mod[kind];
      // Only top-level types carry apiVersion and kind; PodSpec and the like do not.
      if (c && c.apiVersion === apiVersion && c.kind === kind && typeof c.prototype.validate === "function") cls = c;
    } catch (e) {
      if (e.code !== "MODULE_NOT_FOUND" && e.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED") throw e;
    }
  }
  classes.set(key, cls);
  return cls;
}

// --- unknown fields --------------------------------------------------------

function tracked(root) {
  const recs = new WeakMap();
  const all = [];
  function wrap(value, where) {
    if (value === null || typeof value !== "object") return value;
    const known = recs.get(value);
    if (known) return known.proxy;
    const rec = { target: value, where, seen: new Set(), iterated: false };
    const note = (k) => { if (typeof k === "string") rec.seen.add(k); };
    rec.proxy = new Proxy(value, {
      get(t, k, r) {
        note(k);
        const v = Reflect.get(t, k, r);
        return typeof k === "string" && Object.prototype.hasOwnProperty.call(t, k) ? wrap(v, `${where}/${k}`) : v;
      },
      has(t, k) { note(k); return Reflect.has(t, k); },
      getOwnPropertyDescriptor(t, k) { note(k); return Reflect.getOwnPropertyDescriptor(t, k); },
      ownKeys(t) { rec.iterated = true; return Reflect.ownKeys(t); },
    });
    recs.set(value, rec);
    all.push(rec);
    return rec.proxy;
  }
  const proxy = wrap(root, "");
  function unknown() {
    const out = [];
    for (const rec of all) {
      // Arrays have no fields; an object the validator iterated is a map; one
      // it never looked into is free-form (no schema below that point).
      if (Array.isArray(rec.target) || rec.iterated || rec.seen.size === 0) continue;
      for (const k of Object.keys(rec.target)) {
        if (!rec.seen.has(k)) out.push(`data${rec.where}/${k} is not a known field (typo, or wrong level?)`);
      }
    }
    return out;
  }
  return { proxy, unknown };
}

// --- names and labels ------------------------------------------------------

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

function labelErrors(labels, where) {
  const out = [];
  if (!labels || typeof labels !== "object") return out;
  for (const [k, v] of Object.entries(labels)) {
    const slash = k.lastIndexOf("/");
    const prefix = slash >= 0 ? k.slice(0, slash) : null;
    const name = slash >= 0 ? k.slice(slash + 1) : k;
    if (name.length > 63 || !LABEL_NAME.test(name) || (prefix !== null && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)))) {
      out.push(`data${where}: invalid label key ${JSON.stringify(k)}`);
    }
    if (typeof v !== "string" || v.length > 63 || !LABEL_VALUE.test(v)) {
      out.push(`data${where}: invalid value ${JSON.stringify(v)} for label ${JSON.stringify(k)}`);
    }
  }
  return out;
}

function metaErrors(obj) {
  const out = [];
  const name = obj && obj.metadata && obj.metadata.name;
  if (typeof name !== "string" || name.length === 0) out.push("data/metadata/name is required");
  else if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) out.push(`data/metadata/name ${JSON.stringify(name)} is not a DNS subdomain`);
  // Every metadata.labels in the object (the object's, pod templates', ...).
  (function walk(v, where) {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${where}/${i}`));
    else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if (k === "metadata" && x && typeof x === "object") out.push(...labelErrors(x.labels, `${where}/metadata/labels`));
        walk(x, `${where}/${k}`);
      }
    }
  })(obj, "");
  return out;
}

// --- one document ----------------------------------------------------------

// kustomize wraps long base64 values over several lines; the API server's
// decoder skips the line breaks, the schema's "byte" format does not.
function unwrapBase64(obj) {
  const maps = [];
  if (obj.apiVersion === "v1" && obj.kind === "Secret") maps.push(obj.data);
  if (obj.apiVersion === "v1" && obj.kind === "ConfigMap") maps.push(obj.binaryData);
  for (const m of maps) {
    if (!m || typeof m !== "object") continue;
    for (const [k, v] of Object.entries(m)) if (typeof v === "string") m[k] = v.replace(/[\r\n]/g, "");
  }
}

function validate(obj) {
  if (!obj || typeof obj !== "object" || Array.isArray(obj)) return ["document is not an object"];
  unwrapBase64(obj);
  const cls = modelClass(obj.apiVersion, obj.kind);
  if (!cls) return [`unknown apiVersion/kind ${JSON.stringify(obj.apiVersion)}/${JSON.stringify(obj.kind)}`];
  const errors = [];
  const t = tracked(obj);
  try {
    // The model's validate() checks `this` against its schema.
    cls.prototype.validate.call(t.proxy);
  } catch (e) {
    if (!Array.isArray(e.errors) && !/^data/.test(String(e.message))) throw e;
    errors.push(...String(e.message).split(/, (?=data)/));
  }
  errors.push(...t.unknown());
  errors.push(...metaErrors(obj));
  return errors;
}

// --- main ------------------------------------------------------------------

const documents = [];
let syntaxError = false;
for (const file of files) {
  const source = file === "-" ? "<stdin>" : file;
  const text = fs.readFileSync(file === "-" ? 0 : file, "utf8");
  const docs = YAML.parseAllDocuments(text);
  let index = 0;
  for (const doc of docs) {
    if (doc.errors && doc.errors.length) {
      syntaxError = true;
      documents.push({ source, index: index++, errors: doc.errors.map((e) => `YAML: ${e.message}`) });
      continue;
    }
    const obj = doc.toJS({ maxAliasCount: 100 });
    if (obj === null || obj === undefined) continue; // an empty document
    const m = (obj && typeof obj === "object" && obj.metadata) || {};
    documents.push({
      source,
      index: index++,
      apiVersion: obj && obj.apiVersion,
      kind: obj && obj.kind,
      name: m.name,
      errors: parseOnly ? [] : validate(obj),
      object: obj,
    });
  }
}
process.stdout.write(JSON.stringify({ documents }) + "\n");
process.exit(syntaxError ? 2 : documents.some((d) => d.errors.length) ? 1 : 0);
