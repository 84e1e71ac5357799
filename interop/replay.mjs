// Replays a scenario against the component transpiled by jco, under Node.js, with every import
// written here in JS, and prints the same trace as `jira-sync-host replay` (tests/jco.rs compares).
//
//   node replay.mjs TRANSPILED_DIR SCENARIO.json
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import jwt from 'atlassian-jwt';

const [dir, scenarioFile] = process.argv.slice(2);
const scenario = JSON.parse(readFileSync(scenarioFile, 'utf8'));
const { instantiate } = await import(pathToFileURL(join(dir, 'jira_sync_plugin.js')));

// --- the platform: installations, links, groups, users, deliveries ---------------------------

const bool = (v, dflt) => (v === undefined ? dflt : v);
// The guest's view of the credentials: the secrets that verify deliveries.
function credentials(spec) {
  const c = spec.credentials ?? { kind: 'connect' };
  switch (c.kind) {
    case 'admin-webhook': return { tag: 'admin-webhook', val: c.secret };
    case 'oauth': return { tag: 'oauth', val: { clientId: c.client_id, clientSecret: c.client_secret } };
    case 'forge': return { tag: 'forge' };
    default: return { tag: 'connect', val: spec.shared_secret ?? '' };
  }
}
function installation(spec) {
  return {
    clientKey: spec.client_key,
    credentials: credentials(spec),
    baseUrl: spec.base_url,
    appKey: spec.app_key,
    config: {
      useEmailScope: bool(spec.use_email_scope, false),
      syncStatusForward: Object.entries(spec.sync_status_forward ?? {}).map(([projectId, p]) => ({
        projectId, resolvedStatus: p.resolved, unresolvedStatus: p.unresolved,
      })),
      syncStatusReverse: bool(spec.sync_status_reverse, true),
      syncForwardAssignment: bool(spec.sync_forward_assignment, true),
      syncReverseAssignment: bool(spec.sync_reverse_assignment, true),
      resolutionStrategy: spec.resolution_strategy ?? 'resolve',
      maxTransitionHops: spec.max_transition_hops ?? 5,
      retry: {
        maxRetries: spec.retry?.max_retries ?? 3,
        maxTotalWaitSeconds: spec.retry?.max_total_wait ?? 60,
      },
      clockSkewSeconds: spec.clock_skew_seconds ?? 0,
      maxTokenLifetimeSeconds: spec.max_token_lifetime_seconds ?? 3600,
      webhookMaxWaitSeconds: spec.webhook_max_wait_seconds ?? 5,
      exactStatusMapping: bool(spec.exact_status_mapping, false),
      maxEmailLookups: spec.max_email_lookups ?? 10,
    },
  };
}

const installations = new Map();
for (const spec of [scenario.installation, ...(scenario.other_installations ?? [])]) {
  installations.set(spec.client_key, installation(spec));
}
const links = new Map(); // "clientKey\0issueKey" -> [group ids]
const groups = new Map(); // id -> {status, assignee}
const users = []; // [email, id]
const delivered = new Set();
const applied = new Map();
const linkKey = (ck, key) => `${ck}\0${key}`;
for (const [issueKey, ids] of Object.entries(scenario.links ?? {})) {
  for (const id of ids) if (!groups.has(id)) groups.set(id, { status: 'unresolved', assignee: null });
  links.set(linkKey(scenario.installation.client_key, issueKey),
    [...(links.get(linkKey(scenario.installation.client_key, issueKey)) ?? []), ...ids]);
}
for (const [email, id] of Object.entries(scenario.users ?? {})) users.push([email, id]);
for (const [id, g] of Object.entries(scenario.groups ?? {})) {
  groups.set(Number(id), { status: g.status ?? 'unresolved', assignee: g.assignee ?? null });
}

let now = scenario.now;
const cache = new Map(); // key -> [value, expires]

// --- scripted Jira -----------------------------------------------------------------------------

const stubs = scenario.http ?? [];
const used = stubs.map(() => false);
const unmatched = [];
const sortedPairs = (pairs) => pairs.map(([k, v]) => `${k}\0${v}`).sort();
function matches(stub, method, url) {
  if ((stub.method ?? 'GET').toUpperCase() !== method.toUpperCase() || stub.path !== url.pathname) {
    return false;
  }
  const wanted = sortedPairs(Object.entries(stub.query ?? {}));
  const got = sortedPairs([...url.searchParams.entries()]);
  return wanted.length === got.length && wanted.every((w, i) => w === got[i]);
}
function scripted(method, rawUrl) {
  const url = new URL(rawUrl);
  let i = stubs.findIndex((s, j) => !used[j] && matches(s, method, url));
  if (i < 0) i = stubs.findIndex((s) => s.repeat && matches(s, method, url));
  if (i < 0) {
    unmatched.push(`${method} ${rawUrl}`);
    throw { tag: 'connection', val: `no scripted answer for ${method} ${url.pathname}` };
  }
  used[i] = true;
  const stub = stubs[i];
  const body = stub.body === undefined || stub.body === null ? ''
    : typeof stub.body === 'string' ? stub.body : JSON.stringify(stub.body);
  if (stub.error === 'timeout') throw { tag: 'timeout' };
  if (stub.error === 'connection') throw { tag: 'connection', val: 'connection refused' };
  if (stub.error === 'too-large') throw { tag: 'response-too-large', val: 4194304n };
  if (stub.error) throw { tag: 'connection', val: `scripted error \`${stub.error}\`` };
  return {
    status: stub.status ?? 200,
    headers: Object.entries(stub.headers ?? {}),
    body: new TextEncoder().encode(body),
  };
}

// --- the imports, recording one call -----------------------------------------------------------

const decoder = new TextDecoder();
function bodyValue(bytes) {
  if (!bytes || bytes.length === 0) return null;
  const text = decoder.decode(bytes);
  try { return JSON.parse(text); } catch { return text; }
}
const httpError = (e) => ({
  denied: () => `denied: ${e.val}`,
  timeout: () => 'timeout',
  connection: () => `connection: ${e.val}`,
  'response-too-large': () => `response-too-large: ${e.val}`,
  'invalid-request': () => `invalid-request: ${e.val}`,
})[e.tag]();

let record;
let allowed;
function freshRecord() {
  allowed = new Set();
  record = { http: [], assignments: [], resolutions: [], links: [], cache: { hits: 0, misses: 0, sets: 0, deletes: 0 }, logs: [], slept: 0 };
}

function egress(rawUrl) {
  let url;
  try { url = new URL(rawUrl); } catch (e) { throw { tag: 'invalid-request', val: `${rawUrl}: ${e.message}` }; }
  const scheme = url.protocol.replace(/:$/, '');
  if (scheme !== 'http' && scheme !== 'https') throw { tag: 'denied', val: `scheme \`${scheme}\` is not allowed` };
  if (!allowed.has(url.origin)) throw { tag: 'denied', val: `${url.origin} is not the site of an installation of this call` };
}

function changeStatus(clientKey, issueKey, status, strategy) {
  const ids = links.get(linkKey(clientKey, issueKey)) ?? [];
  let changed = 0;
  for (const id of ids) {
    const g = groups.get(id);
    if (g && g.status !== status) { g.status = status; changed += 1; }
  }
  const resolution = { issue_key: issueKey, action: status === 'resolved' ? 'resolve' : 'unresolve', groups: ids, changed };
  if (strategy) resolution.strategy = strategy;
  record.resolutions.push(resolution);
  return ids.length === 0 ? { tag: 'no-linked-groups' } : { tag: 'changed', val: changed };
}

const imports = {
  'jira-sync:plugin/types': {},
  'jira-sync:plugin/http': {
    send(request) {
      const method = request.method.toUpperCase();
      const exchange = {
        method, url: request.url, headers: Object.fromEntries(request.headers),
        body: bodyValue(request.body),
      };
      try {
        egress(request.url);
        const response = scripted(method, request.url);
        exchange.status = response.status;
        record.http.push(exchange);
        return response;
      } catch (e) {
        exchange.error = httpError(e);
        record.http.push(exchange);
        throw e;
      }
    },
  },
  'jira-sync:plugin/cache': {
    get(key) {
      const entry = cache.get(key);
      if (entry && entry[1] > now) { record.cache.hits += 1; return entry[0]; }
      if (entry) cache.delete(key);
      record.cache.misses += 1;
      return undefined;
    },
    set(key, value, ttl) { record.cache.sets += 1; cache.set(key, [value, now + ttl]); },
    delete(key) { record.cache.deletes += 1; cache.delete(key); },
  },
  'jira-sync:plugin/installations': {
    getByClientKey(clientKey) {
      const found = installations.get(clientKey);
      if (found) {
        try {
          const origin = new URL(found.baseUrl).origin;
          if (origin !== 'null') allowed.add(origin);
        } catch { /* an unparsable base URL allows nothing */ }
      }
      return found;
    },
  },
  'jira-sync:plugin/group-assignment': {
    assign(clientKey, issueKey, email) {
      const ids = links.get(linkKey(clientKey, issueKey)) ?? [];
      const user = users.find(([known]) => known.toLowerCase() === email.toLowerCase());
      let result; let outcome; let assigned = ids;
      if (ids.length === 0) { result = 'no-linked-groups'; outcome = { tag: 'no-linked-groups' }; }
      else if (user) {
        for (const id of ids) { const g = groups.get(id); if (g) g.assignee = user[1]; }
        result = 'assigned'; outcome = { tag: 'assigned', val: ids.length };
      } else { result = 'no-user-with-email'; outcome = { tag: 'no-user-with-email' }; assigned = []; }
      record.assignments.push({ issue_key: issueKey, email, result, groups: assigned });
      return outcome;
    },
    unassign(clientKey, issueKey) {
      const ids = links.get(linkKey(clientKey, issueKey)) ?? [];
      for (const id of ids) { const g = groups.get(id); if (g) g.assignee = null; }
      const result = ids.length === 0 ? 'no-linked-groups' : 'unassigned';
      record.assignments.push({ issue_key: issueKey, email: null, result, groups: ids });
      return ids.length === 0 ? { tag: 'no-linked-groups' } : { tag: 'unassigned', val: ids.length };
    },
  },
  'jira-sync:plugin/links': {
    remove(clientKey, issueKey) {
      const ids = links.get(linkKey(clientKey, issueKey)) ?? [];
      links.delete(linkKey(clientKey, issueKey));
      for (const field of ['status', 'assignee']) applied.delete(`${clientKey}\0${issueKey}\0${field}`);
      record.links.push({ issue_key: issueKey, groups: ids });
      return ids.length;
    },
    rename(clientKey, from, to) {
      const ids = links.get(linkKey(clientKey, from)) ?? [];
      if (from !== to) {
        const merged = [...new Set([...(links.get(linkKey(clientKey, to)) ?? []), ...ids])].sort((a, b) => a - b);
        links.delete(linkKey(clientKey, from));
        if (merged.length > 0) links.set(linkKey(clientKey, to), merged);
        for (const field of ['status', 'assignee']) {
          const old = applied.get(`${clientKey}\0${from}\0${field}`);
          applied.delete(`${clientKey}\0${from}\0${field}`);
          const cur = applied.get(`${clientKey}\0${to}\0${field}`);
          if (old !== undefined && !(cur >= old)) applied.set(`${clientKey}\0${to}\0${field}`, old);
        }
      }
      record.links.push({ issue_key: from, renamed_to: to, groups: ids });
      return ids.length;
    },
  },
  'jira-sync:plugin/group-status': {
    resolve: (clientKey, issueKey, strategy) => changeStatus(clientKey, issueKey, 'resolved', strategy),
    unresolve: (clientKey, issueKey) => changeStatus(clientKey, issueKey, 'unresolved', null),
  },
  'jira-sync:plugin/deliveries': {
    // Replay runs one call at a time: a claim finds a delivery handled or free.
    claim: (ck, id) => (delivered.has(`${ck}\0${id}`) ? 'handled' : 'claimed'),
    markHandled: (ck, id) => { delivered.add(`${ck}\0${id}`); },
    lastApplied: (ck, key, field) => applied.get(`${ck}\0${key}\0${field}`),
    setLastApplied: (ck, key, field, ms) => {
      const at = `${ck}\0${key}\0${field}`;
      // Only forward, like the Rust host's compare-and-set.
      if (!(applied.get(at) > ms)) applied.set(at, ms);
    },
  },
  'jira-sync:plugin/clock': {
    now: () => BigInt(now),
    sleep(seconds) { record.slept += seconds; now += seconds; },
  },
  'jira-sync:plugin/log': {
    log(level, event, fields) {
      const line = { level, event };
      if (fields.length > 0) line.fields = Object.fromEntries(fields);
      record.logs.push(line);
    },
  },
};

// --- signing webhooks like Jira (independently of the guest) -----------------------------------

const b64url = (data) => Buffer.from(data).toString('base64url');
function authorization(hook) {
  const o = hook.sign === true ? {} : hook.sign;
  const inst = scenario.installation;
  const method = o.qsh_method ?? hook.method;
  const path = o.qsh_path ?? hook.path;
  const query = o.qsh_query ?? hook.query;
  const qsh = jwt.createQueryStringHash(
    jwt.fromMethodAndUrl(method, `https://app.invalid${path}${query ? `?${query}` : ''}`), false, 'https://app.invalid');
  const claims = { iss: o.iss ?? inst.client_key, iat: now, exp: now + (o.exp_in ?? 180), qsh };
  for (const claim of o.omit ?? []) delete claims[claim];
  const alg = o.alg ?? 'HS256';
  const input = `${b64url(JSON.stringify({ typ: 'JWT', alg }))}.${b64url(JSON.stringify(claims))}`;
  const signature = alg === 'none' ? ''
    : createHmac('sha256', o.secret ?? inst.shared_secret).update(input).digest('base64url');
  return `${o.scheme ?? 'JWT'} ${input}.${signature}`;
}

// --- outcomes as the Rust trace spells them ----------------------------------------------------

function failure(f) {
  switch (f.tag) {
    case 'unknown-installation': return { type: 'unknown-installation' };
    case 'http': return { type: 'http', error: httpError(f.val) };
    case 'server-error': return { type: 'server-error', status: f.val };
    case 'unexpected-status': return { type: 'unexpected-status', status: f.val };
    default: return { type: 'bad-response', endpoint: f.val };
  }
}
function statusOutcome(o) {
  switch (o.tag) {
    case 'transitioned': return { type: 'transitioned', transitions: o.val };
    case 'unreachable': return { type: 'unreachable', target: o.val.target, transitions: o.val.transitions, statuses_seen: o.val.statusesSeen };
    case 'rejected': return { type: 'rejected', message: o.val };
    case 'rate-limited': return { type: 'rate-limited', retry_after: o.val };
    case 'failed': return { type: 'failed', failure: failure(o.val) };
    default: return { type: o.tag };
  }
}
function assigneeOutcome(o) {
  switch (o.tag) {
    case 'assigned': return { type: 'assigned', account_id: o.val };
    case 'unauthorized': return { type: 'unauthorized', message: o.val };
    case 'failed': return { type: 'failed', message: o.val[0], failure: failure(o.val[1]) };
    default: return { type: o.tag };
  }
}

// --- the steps ---------------------------------------------------------------------------------

const compiled = new Map();
async function getCoreModule(path) {
  if (!compiled.has(path)) compiled.set(path, await WebAssembly.compile(await readFile(join(dir, path))));
  return compiled.get(path);
}

async function call(kind, run) {
  freshRecord();
  // A fresh instance per call, as the wasmtime harness does.
  const component = await instantiate(getCoreModule, imports);
  let result; let error = null;
  try { result = run(component); } catch (e) { error = String(e); }
  return { kind, result, error, record };
}

function stepTrace({ kind, error, record: r }, response, outcome) {
  const trace = { kind, response, outcome, error, http: r.http, assignments: r.assignments, resolutions: r.resolutions, cache: r.cache, logs: r.logs, slept: r.slept };
  // Only deleted and moved issues change links, as in the Rust trace.
  if (r.links.length > 0) trace.links = r.links;
  return trace;
}

const steps = [];
for (const step of scenario.steps) {
  const [kind, spec] = Object.entries(step)[0];
  if (kind === 'advance_clock') {
    now += spec;
    steps.push({ kind, seconds: spec });
  } else if (kind === 'webhook') {
    const hook = { method: 'POST', path: '/extensions/jira/issue-updated/', query: '', ...spec };
    const headers = Object.entries(hook.headers ?? {});
    const hasAuth = headers.some(([k]) => k.toLowerCase() === 'authorization');
    if (hook.sign && !hasAuth) headers.push(['Authorization', authorization(hook)]);
    const body = typeof hook.body === 'string' ? hook.body : JSON.stringify(hook.body ?? null);
    const c = await call(kind, (m) => m.webhook.handle({
      method: hook.method, path: hook.path, query: hook.query, headers, body: new TextEncoder().encode(body),
    }));
    const response = c.result ? {
      status: c.result.status, headers: Object.fromEntries(c.result.headers), body: bodyValue(c.result.body),
    } : null;
    steps.push(stepTrace(c, response, null));
  } else if (kind === 'sync_status_outbound') {
    const c = await call(kind, (m) => m.outbound.syncStatus({
      clientKey: spec.client_key ?? scenario.installation.client_key, issueKey: spec.issue_key,
      resolved: spec.resolved, dryRun: spec.dry_run ?? false, source: spec.source ?? 'platform',
    }));
    steps.push(stepTrace(c, null, c.result ? statusOutcome(c.result) : null));
  } else if (kind === 'sync_assignee_outbound') {
    const c = await call(kind, (m) => m.outbound.syncAssignee({
      clientKey: spec.client_key ?? scenario.installation.client_key, issueKey: spec.issue_key,
      target: spec.unassign ? { tag: 'unassign' } : { tag: 'emails', val: spec.emails ?? [] },
      source: spec.source ?? 'platform',
    }));
    steps.push(stepTrace(c, null, c.result ? assigneeOutcome(c.result) : null));
  } else {
    throw new Error(`unknown step ${kind}`);
  }
}

const finalGroups = Object.fromEntries([...groups.entries()].sort((a, b) => a[0] - b[0])
  .map(([id, g]) => [String(id), { status: g.status, assignee: g.assignee }]));
process.stdout.write(JSON.stringify({ steps, groups: finalGroups, unmatched_http: unmatched }));
