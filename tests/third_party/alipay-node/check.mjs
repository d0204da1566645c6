// Alipay's official Node SDK (`alipay-sdk`, pinned, from npm) against the sandbox: content
// encryption (AES, `needEncrypt`: the SDK encrypts the request, the sandbox reads it and answers
// encrypted, the SDK decrypts) in public-key mode, and certificate mode with the certificates
// the sandbox issued (the SDK computes the SNs itself). Each creates, queries, pays (through the
// control API), verifies the notification with the SDK, queries the payment and refunds; in
// certificate mode every answer's signature is checked by the SDK. Run by `run.sh` against a `wechat-sandbox` binary:
//
//   node check.mjs BASE_URL AES_APP_ID AES_KEY CERT_APP_ID APP_PRIVATE_KEY_PEM
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { AlipaySdk } from 'alipay-sdk';

const [base, aesApp, aesKey, certApp, keyPath] = process.argv.slice(2);
const privateKey = readFileSync(keyPath, 'utf8');
const gateway = `${base.replace(/\/$/, '')}/gateway.do`;

function check(label, ok) {
  if (!ok) {
    console.log('FAILED:', label);
    process.exit(1);
  }
  console.log('ok:', label);
}

const received = [];
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => { received.push(body); res.end('success'); });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const notifyUrl = `http://127.0.0.1:${server.address().port}/notify`;

async function control(path, payload) {
  const r = await fetch(base + path, {
    method: payload === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  return r.json();
}

async function run(mode, sdk, needEncrypt) {
  const no = `NODE-${mode}`;
  // The SDK cannot check the signature of an encrypted answer (it looks for an object where the
  // answer is the quoted ciphertext, which is what Alipay signs): with encryption it decrypts
  // only, and the signature is the alipay crate's own tests' business.
  const exec = (method, bizContent, extra = {}) =>
    sdk.exec(method, { bizContent, needEncrypt, ...extra }, { validateSign: !needEncrypt });
  const created = await exec('alipay.trade.precreate',
    { out_trade_no: no, total_amount: '2.50', subject: 'Cola' }, { notify_url: notifyUrl });
  check(`${mode}: precreate`, created.code === '10000' && created.qrCode.startsWith('https://'));
  const waiting = await exec('alipay.trade.query', { out_trade_no: no });
  check(`${mode}: query WAIT_BUYER_PAY`, waiting.tradeStatus === 'WAIT_BUYER_PAY');

  const before = received.length;
  await control('/sandbox/pay', { out_trade_no: no });
  for (let i = 0; i < 200 && received.length <= before; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  check(`${mode}: notification received`, received.length > before);
  const form = Object.fromEntries(new URLSearchParams(received[before]));
  check(`${mode}: notification verified by the SDK`, sdk.checkNotifySign({ ...form }));
  check(`${mode}: a changed notification is refused`,
    !sdk.checkNotifySign({ ...form, total_amount: '0.01' }));

  const paid = await exec('alipay.trade.query', { out_trade_no: no });
  check(`${mode}: query TRADE_SUCCESS`, paid.tradeStatus === 'TRADE_SUCCESS' && paid.totalAmount === '2.50');
  const refund = await exec('alipay.trade.refund',
    { out_trade_no: no, refund_amount: '1.00', out_request_no: `${no}-R1` });
  check(`${mode}: refund`, refund.code === '10000' && refund.refundFee === '1.00');
}

// Content encryption, public-key mode.
const alipayPublicKey = await (await fetch(`${base}/sandbox/alipay-public-key`)).text();
await run('aes', new AlipaySdk({
  appId: aesApp, privateKey, keyType: 'PKCS8', alipayPublicKey, gateway, encryptKey: aesKey,
}), true);

// Certificate mode.
const certs = await control(`/sandbox/alipay/certs/${certApp}`);
const certSdk = new AlipaySdk({
  appId: certApp, privateKey, keyType: 'PKCS8', gateway,
  appCertContent: certs.app_cert,
  alipayPublicCertContent: certs.alipay_cert,
  alipayRootCertContent: certs.root_cert,
});
check('certificate: the SDK\'s app_cert_sn is the sandbox\'s', certSdk.config.appCertSn === certs.app_cert_sn);
check('certificate: the SDK\'s alipay_root_cert_sn is the sandbox\'s',
  certSdk.config.alipayRootCertSn === certs.alipay_root_cert_sn);
check('certificate: the SDK\'s alipay_cert_sn is the sandbox\'s', certSdk.config.alipayCertSn === certs.alipay_cert_sn);
await run('certificate', certSdk, false);

server.close();
console.log('alipay-sdk (Node) against the sandbox: all checks passed');
