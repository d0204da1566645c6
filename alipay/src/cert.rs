//! Certificate mode (公钥证书): the app's certificate, Alipay's certificate and Alipay's root
//! certificate instead of bare public keys.
//!
//! Alipay names a certificate by its **SN**: the MD5, in lower-case hex, of the certificate's
//! issuer as RFC 2253 writes it (`CN=…,OU=…,O=…,C=CN`, the most specific part first) followed by
//! its serial number in decimal. Every request carries `app_cert_sn` (the app certificate's SN)
//! and `alipay_root_cert_sn` (the SNs of the root file's RSA certificates joined by `_`; the
//! file also holds SM2 and ECDSA roots, which do not count); every answer carries
//! `alipay_cert_sn`, the SN of the certificate whose key signed it. When Alipay rotates its
//! certificate, answers name an SN the client does not hold: the client downloads it
//! (`alipay.open.app.alipaycert.download`), accepts it only if it chains to the root
//! ([`verify_chain`]), and verifies with it from then on.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

use crate::sign::PublicKey;
use crate::{Error, SignatureError};

/// One parsed certificate and its DER (the signed part is read from the DER as it stands).
#[derive(Clone)]
pub struct Cert {
    der: Vec<u8>,
    parsed: Certificate,
    sn: String,
}

impl fmt::Debug for Cert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cert")
            .field(
                "subject",
                &self.parsed.tbs_certificate().subject().to_string(),
            )
            .field("sn", &self.sn)
            .finish()
    }
}

impl Cert {
    /// Every certificate of a PEM file, in order (a file may hold a chain).
    pub fn parse_pem_chain(pem_text: &str) -> Result<Vec<Cert>, Error> {
        let blocks = pem::parse_many(pem_text.trim())
            .map_err(|e| Error::Config(format!("certificate PEM: {e}")))?;
        let certs = blocks
            .into_iter()
            .filter(|b| b.tag() == "CERTIFICATE")
            .map(|b| Cert::from_der(b.into_contents()))
            .collect::<Result<Vec<_>, _>>()?;
        if certs.is_empty() {
            return Err(Error::Config("no CERTIFICATE in the PEM text".into()));
        }
        Ok(certs)
    }

    /// A certificate from its DER.
    pub fn from_der(der: Vec<u8>) -> Result<Cert, Error> {
        let parsed = Certificate::from_der(&der)
            .map_err(|e| Error::Config(format!("not an X.509 certificate: {e}")))?;
        let tbs = parsed.tbs_certificate();
        let issuer = tbs.issuer().to_string();
        let serial = decimal(tbs.serial_number().as_bytes());
        let sn = format!("{:x}", md5_digest(format!("{issuer}{serial}").as_bytes()));
        Ok(Cert { der, parsed, sn })
    }

    /// Alipay's SN of this certificate.
    pub fn sn(&self) -> &str {
        &self.sn
    }

    /// The subject, RFC 4514.
    pub fn subject(&self) -> String {
        self.parsed.tbs_certificate().subject().to_string()
    }

    /// The certificate's public key, for verifying Alipay's signatures.
    pub fn public_key(&self) -> Result<PublicKey, Error> {
        let spki = self
            .parsed
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| Error::Config(format!("certificate key: {e}")))?;
        PublicKey::from_der(&spki)
    }

    /// Signed with RSA (the kind of root that counts in `alipay_root_cert_sn`).
    fn signed_with_rsa(&self) -> bool {
        self.parsed
            .signature_algorithm()
            .oid
            .to_string()
            .starts_with("1.2.840.113549.1.1.")
    }

    /// Whether `issuer` signed this certificate (its name and its signature).
    fn issued_by(&self, issuer: &Cert) -> bool {
        if self.parsed.tbs_certificate().issuer() != issuer.parsed.tbs_certificate().subject() {
            return false;
        }
        let Some(algorithm) = rsa_algorithm(&self.parsed.signature_algorithm().oid.to_string())
        else {
            return false;
        };
        let (Some(tbs), Some(signature)) =
            (tbs_bytes(&self.der), self.parsed.signature().as_bytes())
        else {
            return false;
        };
        let key = issuer
            .parsed
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes();
        UnparsedPublicKey::new(algorithm, key)
            .verify(tbs, signature)
            .is_ok()
    }

    /// Whether `at` lies in the certificate's validity.
    fn valid_at(&self, at: SystemTime) -> bool {
        let v = self.parsed.tbs_certificate().validity();
        let at = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        v.not_before.to_unix_duration() <= at && at <= v.not_after.to_unix_duration()
    }
}

/// The SN of the first certificate in `pem_text` (`app_cert_sn`, or an Alipay certificate's).
pub fn cert_sn(pem_text: &str) -> Result<String, Error> {
    Ok(Cert::parse_pem_chain(pem_text)?.remove(0).sn)
}

/// `alipay_root_cert_sn`: the SNs of the root file's RSA-signed certificates, joined by `_`.
pub fn root_cert_sn(pem_text: &str) -> Result<String, Error> {
    root_sn_of(&Cert::parse_pem_chain(pem_text)?)
}

fn root_sn_of(roots: &[Cert]) -> Result<String, Error> {
    let sns: Vec<&str> = roots
        .iter()
        .filter(|c| c.signed_with_rsa())
        .map(Cert::sn)
        .collect();
    if sns.is_empty() {
        return Err(Error::Config(
            "the root certificate file holds no RSA certificate".into(),
        ));
    }
    Ok(sns.join("_"))
}

/// Whether the first certificate of `chain` is trusted at `at`: each certificate is signed by
/// the next one of `chain` or by one of `roots`, the walk ends at a root, and every certificate
/// on the way is within its validity. What Alipay's SDKs call `isTrusted`.
pub fn verify_chain(chain: &[Cert], roots: &[Cert], at: SystemTime) -> Result<(), Error> {
    let untrusted = |why: String| Error::Config(format!("certificate not trusted: {why}"));
    let mut current = chain
        .first()
        .ok_or_else(|| untrusted("no certificate".into()))?;
    // A chain longer than this is not Alipay's.
    for _ in 0..8 {
        if !current.valid_at(at) {
            return Err(untrusted(format!(
                "{} is outside its validity",
                current.subject()
            )));
        }
        if let Some(root) = roots.iter().find(|r| current.issued_by(r)) {
            if !root.valid_at(at) {
                return Err(untrusted(format!(
                    "root {} is outside its validity",
                    root.subject()
                )));
            }
            return Ok(());
        }
        current = chain
            .iter()
            .find(|c| !std::ptr::eq(*c, current) && current.issued_by(c))
            .ok_or_else(|| untrusted(format!("{} is not issued by the root", current.subject())))?;
    }
    Err(untrusted("the chain is too long".into()))
}

/// The three certificates of certificate mode, parsed and checked: the app's (its SN is sent on
/// every request), Alipay's (whose key verifies answers and notifications) and Alipay's root
/// (what a downloaded certificate must chain to). Certificates are public; `Debug` shows SNs.
#[derive(Clone)]
pub struct Certificates {
    pub(crate) app_cert_sn: String,
    pub(crate) root_cert_sn: String,
    pub(crate) alipay_cert_sn: String,
    pub(crate) alipay_key: PublicKey,
    pub(crate) roots: Vec<Cert>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("app_cert_sn", &self.app_cert_sn)
            .field("alipay_cert_sn", &self.alipay_cert_sn)
            .field("alipay_root_cert_sn", &self.root_cert_sn)
            .finish()
    }
}

impl Certificates {
    /// From the three PEM files Alipay's console gives: the app certificate
    /// (`appCertPublicKey_<appid>.crt`), Alipay's certificate (`alipayCertPublicKey_RSA2.crt`)
    /// and Alipay's root certificate (`alipayRootCert.crt`). Alipay's certificate must chain to
    /// the root and be valid now.
    pub fn from_pem(app_cert: &str, alipay_cert: &str, root_cert: &str) -> Result<Self, Error> {
        Self::from_pem_at(app_cert, alipay_cert, root_cert, SystemTime::now())
    }

    /// [`Certificates::from_pem`], checking validity at `at`.
    pub fn from_pem_at(
        app_cert: &str,
        alipay_cert: &str,
        root_cert: &str,
        at: SystemTime,
    ) -> Result<Self, Error> {
        let named = |what: &str, e: Error| Error::Config(format!("{what}: {e}"));
        let app_cert_sn = cert_sn(app_cert).map_err(|e| named("app certificate", e))?;
        let roots = Cert::parse_pem_chain(root_cert).map_err(|e| named("root certificate", e))?;
        let root_cert_sn = root_sn_of(&roots).map_err(|e| named("root certificate", e))?;
        let chain =
            Cert::parse_pem_chain(alipay_cert).map_err(|e| named("Alipay certificate", e))?;
        verify_chain(&chain, &roots, at).map_err(|e| named("Alipay certificate", e))?;
        let alipay_key = chain[0]
            .public_key()
            .map_err(|e| named("Alipay certificate", e))?;
        Ok(Certificates {
            app_cert_sn,
            root_cert_sn,
            alipay_cert_sn: chain[0].sn.clone(),
            alipay_key,
            roots,
        })
    }

    /// `app_cert_sn`.
    pub fn app_cert_sn(&self) -> &str {
        &self.app_cert_sn
    }

    /// `alipay_root_cert_sn`.
    pub fn root_cert_sn(&self) -> &str {
        &self.root_cert_sn
    }

    /// The SN of the configured Alipay certificate.
    pub fn alipay_cert_sn(&self) -> &str {
        &self.alipay_cert_sn
    }

    /// The configured Alipay certificate's key.
    pub fn alipay_public_key(&self) -> &PublicKey {
        &self.alipay_key
    }

    /// A downloaded Alipay certificate (PEM, possibly with its intermediates), accepted if it
    /// chains to the root and is valid now, and is the certificate `sn` names: its key.
    pub fn accept_downloaded(&self, sn: &str, pem_text: &str) -> Result<PublicKey, Error> {
        self.accept_downloaded_at(sn, pem_text, SystemTime::now())
    }

    /// [`Certificates::accept_downloaded`], checking validity at `at`.
    pub fn accept_downloaded_at(
        &self,
        sn: &str,
        pem_text: &str,
        at: SystemTime,
    ) -> Result<PublicKey, Error> {
        let untrusted = Error::Signature(SignatureError::UntrustedCertificate);
        let chain = Cert::parse_pem_chain(pem_text).map_err(|_| untrusted.clone())?;
        if chain[0].sn != sn {
            return Err(untrusted);
        }
        verify_chain(&chain, &self.roots, at).map_err(|_| untrusted.clone())?;
        chain[0].public_key().map_err(|_| untrusted)
    }
}

/// The signed part (`tbsCertificate`) of a certificate's DER, as it stands.
fn tbs_bytes(der: &[u8]) -> Option<&[u8]> {
    let (outer_header, _) = der_header(der)?;
    let inner = der.get(outer_header..)?;
    let (header, len) = der_header(inner)?;
    inner.get(..header + len)
}

/// A DER element's header length and content length.
fn der_header(bytes: &[u8]) -> Option<(usize, usize)> {
    let first = *bytes.get(1)?;
    if first < 0x80 {
        return Some((2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let len = bytes
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some((2 + n, len))
}

/// The RSA signature algorithms certificates are signed with.
fn rsa_algorithm(oid: &str) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match oid {
        "1.2.840.113549.1.1.5" => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        "1.2.840.113549.1.1.11" => &signature::RSA_PKCS1_2048_8192_SHA256,
        "1.2.840.113549.1.1.12" => &signature::RSA_PKCS1_2048_8192_SHA384,
        "1.2.840.113549.1.1.13" => &signature::RSA_PKCS1_2048_8192_SHA512,
        _ => return None,
    })
}

/// A big-endian unsigned integer in decimal.
fn decimal(bytes: &[u8]) -> String {
    let mut digits: Vec<u8> = Vec::new(); // little-endian base 10
    for &byte in bytes {
        let mut carry = u32::from(byte);
        for d in &mut digits {
            let v = u32::from(*d) * 256 + carry;
            *d = (v % 10) as u8;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push((carry % 10) as u8);
            carry /= 10;
        }
    }
    if digits.is_empty() {
        return "0".into();
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

fn md5_digest(data: &[u8]) -> Md5Hex {
    use md5::{Digest, Md5};
    Md5Hex(Md5::digest(data).into())
}

struct Md5Hex([u8; 16]);

impl fmt::LowerHex for Md5Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Alipay's published root certificate file and a production Alipay / app certificate pair
    // (public documents; see testdata/certs/README.md). The root SN is the value Alipay's docs
    // and every SDK send; the others were cross-checked with Python's `cryptography`.
    const ROOT: &str = include_str!("../testdata/certs/alipay_root_cert.crt");
    const ALIPAY: &str = include_str!("../testdata/certs/alipay_cert.crt");
    const APP: &str = include_str!("../testdata/certs/app_cert.crt");
    const SANDBOX_ALIPAY: &str = include_str!("../testdata/certs/sandbox_alipay_cert.crt");

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix)
    }
    const DEC_2026: u64 = 1_796_083_200;
    const JAN_2031: u64 = 1_924_992_000;

    #[test]
    fn the_root_sn_is_alipays_published_one_from_its_rsa_roots_only() {
        assert_eq!(
            root_cert_sn(ROOT).unwrap(),
            "687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6"
        );
        // Four roots in the file: SM2, RSA (SHA-256), ECDSA, RSA (SHA-1).
        assert_eq!(Cert::parse_pem_chain(ROOT).unwrap().len(), 4);
    }

    #[test]
    fn certificate_sns_are_md5_of_issuer_and_decimal_serial() {
        assert_eq!(cert_sn(ALIPAY).unwrap(), "f51911a196031df9fdd0c1d7ca67bf26");
        assert_eq!(cert_sn(APP).unwrap(), "fc04d815da51e5d833da90875d02672f");
        assert_eq!(
            cert_sn(SANDBOX_ALIPAY).unwrap(),
            "b09baa7d1d5b198c713b230c5a6ec8e7"
        );
    }

    #[test]
    fn alipays_certificate_chains_to_the_root_and_another_ca_does_not() {
        let roots = Cert::parse_pem_chain(ROOT).unwrap();
        let chain = Cert::parse_pem_chain(ALIPAY).unwrap();
        verify_chain(&chain, &roots, at(DEC_2026)).unwrap();
        // Expired by 2031.
        assert!(verify_chain(&chain, &roots, at(JAN_2031)).is_err());
        // Without its intermediate it reaches no root.
        assert!(verify_chain(&chain[..1], &roots, at(DEC_2026)).is_err());
        // Alipay's sandbox CA is not the production root.
        let other = Cert::parse_pem_chain(SANDBOX_ALIPAY).unwrap();
        assert!(verify_chain(&other, &roots, at(DEC_2026)).is_err());
    }

    #[test]
    fn certificates_load_and_accept_only_a_trusted_download_of_the_named_sn() {
        let certs = Certificates::from_pem_at(APP, ALIPAY, ROOT, at(DEC_2026)).unwrap();
        assert_eq!(certs.app_cert_sn(), "fc04d815da51e5d833da90875d02672f");
        assert_eq!(certs.alipay_cert_sn(), "f51911a196031df9fdd0c1d7ca67bf26");
        let sn = certs.alipay_cert_sn().to_owned();
        certs
            .accept_downloaded_at(&sn, ALIPAY, at(DEC_2026))
            .unwrap();
        let untrusted = Err(Error::Signature(SignatureError::UntrustedCertificate));
        assert_eq!(
            certs
                .accept_downloaded_at(
                    "b09baa7d1d5b198c713b230c5a6ec8e7",
                    SANDBOX_ALIPAY,
                    at(DEC_2026)
                )
                .map(|_| ()),
            untrusted
        );
        assert_eq!(
            certs
                .accept_downloaded_at("0000", ALIPAY, at(DEC_2026))
                .map(|_| ()),
            untrusted
        );
        // An Alipay certificate that does not chain is refused at configuration.
        assert!(Certificates::from_pem_at(APP, SANDBOX_ALIPAY, ROOT, at(DEC_2026)).is_err());
        assert!(format!("{certs:?}").contains("fc04d815"));
    }

    #[test]
    fn serial_numbers_are_written_in_decimal() {
        assert_eq!(decimal(&[0]), "0");
        assert_eq!(decimal(&[0x01, 0x00]), "256");
        assert_eq!(
            decimal(&0x1fcf_a18d_6a48_0d11u64.to_be_bytes()),
            "2292228364100439313"
        );
    }

    #[test]
    fn a_der_header_reads_short_and_long_lengths() {
        assert_eq!(der_header(&[0x30, 0x05]), Some((2, 5)));
        assert_eq!(der_header(&[0x30, 0x82, 0x01, 0x00]), Some((4, 256)));
        assert_eq!(der_header(&[0x30, 0x80]), None);
    }
}
