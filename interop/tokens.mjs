// Tokens and signatures made by libraries nobody here wrote, for differential tests (tests/peers).
//
//   node tokens.mjs rs256 FILE  FILE: [{private_pem, header, claims, hs256_secret?}]
//                               prints [token]: JWTs signed by jose, RS256 with the PKCS#8 key;
//                               with hs256_secret, HS256 keyed with that string's UTF-8 bytes
//                               instead (the "public key as HMAC secret" attack)
//   node tokens.mjs hub FILE    FILE: [{secret, body_base64}]
//                               prints ["sha256=<hex>"]: X-Hub-Signature-256 values computed by
//                               @octokit/webhooks-methods, which signs a string: each body must be
//                               UTF-8, and is refused otherwise rather than silently altered
import { readFileSync } from 'node:fs';
import { SignJWT, importPKCS8 } from 'jose';
import { sign } from '@octokit/webhooks-methods';

const [mode, file] = process.argv.slice(2);
const cases = JSON.parse(readFileSync(file, 'utf8'));

async function rs256(c) {
  if (c.hs256_secret != null) {
    return new SignJWT(c.claims)
      .setProtectedHeader({ ...c.header, alg: 'HS256' })
      .sign(new TextEncoder().encode(c.hs256_secret));
  }
  const key = await importPKCS8(c.private_pem, 'RS256');
  return new SignJWT(c.claims).setProtectedHeader({ ...c.header, alg: 'RS256' }).sign(key);
}

// fatal: invalid UTF-8 throws instead of becoming U+FFFD; ignoreBOM: a leading BOM is kept.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function hub(c) {
  return sign(c.secret, utf8.decode(Buffer.from(c.body_base64, 'base64')));
}

const run = { rs256, hub }[mode];
if (!run) {
  console.error(`usage: node tokens.mjs rs256|hub FILE`);
  process.exit(2);
}
process.stdout.write(JSON.stringify(await Promise.all(cases.map(run))));
