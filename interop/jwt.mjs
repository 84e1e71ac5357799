// Atlassian's atlassian-jwt as the outside peer of the differential JWT test (tests/interop_jwt.rs).
//
//   node jwt.mjs sign FILE    FILE: [{method, url, base_url, iss, secret, iat, exp}]
//                             prints [{qsh, token}]: the qsh and an HS256 token made by atlassian-jwt
//   node jwt.mjs verify FILE  FILE: [{method, url, base_url, authorization, secret}]
//                             prints [{ok, error, qsh, claims}]: decode (signature checked) and qsh
import { readFileSync } from 'node:fs';
import jwt from 'atlassian-jwt';

const [mode, file] = process.argv.slice(2);
const cases = JSON.parse(readFileSync(file, 'utf8'));

const qshOf = (c) =>
  jwt.createQueryStringHash(jwt.fromMethodAndUrl(c.method, c.url), false, c.base_url);

function sign(c) {
  const qsh = qshOf(c);
  const token = jwt.encodeSymmetric({ iss: c.iss, iat: c.iat, exp: c.exp, qsh }, c.secret);
  return { qsh, token };
}

function verify(c) {
  const qsh = qshOf(c);
  try {
    const token = c.authorization.replace(/^JWT /, '');
    const claims = jwt.decodeSymmetric(token, c.secret, jwt.SymmetricAlgorithm.HS256);
    const ok = claims.qsh === qsh && claims.exp - claims.iat === 300;
    return { ok, error: ok ? null : 'qsh or lifetime differs', qsh, claims };
  } catch (e) {
    return { ok: false, error: String(e), qsh, claims: null };
  }
}

const run = { sign, verify }[mode];
if (!run) {
  console.error(`usage: node jwt.mjs sign|verify FILE`);
  process.exit(2);
}
process.stdout.write(JSON.stringify(cases.map(run)));
