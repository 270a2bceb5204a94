//! RFC 3161 timestamps. When `[signing] tsa_url` names a Time-Stamp
//! Authority, the packager asks it to stamp the SHA-256 of the tag manifest
//! (the file the signature covers), which proves the tag manifest, and every
//! hash it lists, existed at the TSA's time, whatever the signer's clock said.
//! The reply is stored beside the tag manifest as [`TIMESTAMP_FILE`]: the DER
//! `TimeStampResp` that `openssl ts -verify -in` reads.
//!
//! Checking a reply means: status granted, a `SignedData` holding a `TSTInfo`
//! whose message imprint is the digest of the tag manifest, signed
//! attributes naming that content and its digest, a signature over them by
//! the certificate the signer info names, that certificate marked for time
//! stamping and valid at the stamped time, and, when the auditor supplies the
//! TSA's CA certificates, a chain from it to one of them.

use cmpv2::status::PkiStatus;
use cms::cert::x509::ext::pkix::{ExtendedKeyUsage, SubjectKeyIdentifier};
use cms::cert::x509::Certificate;
use cms::cert::CertificateChoices;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::{Any, ObjectIdentifier, OctetString};
use der::{Decode, DecodePem, Encode};
use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_tsp::{TimeStampResp, TstInfo};

use crate::error::Result;

/// The timestamp reply, beside the tag manifest it stamps.
pub const TIMESTAMP_FILE: &str = "tagmanifest-sha256.txt.tsr";

/// Largest reply accepted from a TSA or read from a package.
pub(crate) const MAX_REPLY: u64 = 1 << 20;

const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const EC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const SUBJECT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");

/// What a valid timestamp says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimestampInfo {
    /// The stamped time (UTC, RFC 3339).
    pub time: String,
    /// The TSA certificate's subject.
    pub authority: String,
    /// The token's serial number, in hex.
    pub serial: String,
    /// Whether the TSA certificate chains to a CA the auditor supplied
    /// (`false` when none was supplied).
    pub trusted: bool,
}

/// Something that stamps data with a checked RFC 3161 reply: a Time-Stamp
/// Authority client. [`TimestampAuthority`] (feature `tsa-client`) asks one
/// over HTTP.
pub trait Stamp: Send + Sync {
    /// Where the stamps come from (for messages and `README-VERIFY.txt`).
    fn url(&self) -> &str;

    /// A checked timestamp reply over the SHA-256 of `data`: the DER
    /// `TimeStampResp` to store.
    ///
    /// # Errors
    /// When no reply can be had or it does not check out.
    fn stamp(&self, data: &[u8]) -> Result<Vec<u8>>;
}

/// Asking a Time-Stamp Authority over HTTP (feature `tsa-client`).
#[cfg(feature = "tsa-client")]
mod client {
    use std::io::Read;
    use std::time::Duration;

    use der::asn1::{Any, Int, OctetString};
    use der::Encode;
    use spki::AlgorithmIdentifierOwned;
    use x509_tsp::{MessageImprint, TimeStampReq, TspVersion};

    use super::{check_parsed, parse_reply, Stamp, MAX_REPLY, SHA256};
    use crate::error::{Error, ErrorKind, Result};

    /// A configured Time-Stamp Authority, asked over HTTP.
    #[derive(Clone, Debug)]
    pub struct TimestampAuthority {
        url: String,
        client: reqwest::blocking::Client,
    }

    impl TimestampAuthority {
        /// A client for the TSA at `url` (`http` or `https`).
        ///
        /// # Errors
        /// When `url` is not an http(s) URL or no client can be built.
        pub fn new(url: &str) -> Result<TimestampAuthority> {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(Error::config(format!(
                    "[signing] tsa_url {url:?} is not an http(s) URL"
                )));
            }
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .user_agent(crate::tool_version())
                .build()
                .map_err(|e| Error::config(format!("cannot build the TSA client: {e}")))?;
            Ok(TimestampAuthority {
                url: url.to_owned(),
                client,
            })
        }

        fn error(&self, reason: String) -> Error {
            Error::new(
                ErrorKind::Source,
                format!("timestamp authority {}: {reason}", self.url),
            )
        }
    }

    impl Stamp for TimestampAuthority {
        fn url(&self) -> &str {
            &self.url
        }

        /// Transport failures and server errors are retried twice; a reply that
        /// is refused, malformed, for other data or with another nonce, or badly
        /// signed, is an error.
        fn stamp(&self, data: &[u8]) -> Result<Vec<u8>> {
            let digest = ring::digest::digest(&ring::digest::SHA256, data);
            let mut nonce = [0u8; 8];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
                .map_err(|_| self.error("no system randomness for the nonce".into()))?;
            nonce[0] = (nonce[0] & 0x7f) | 0x01; // positive, minimal encoding
            let request = request_der(digest.as_ref(), &nonce)
                .map_err(|e| self.error(format!("cannot encode the request: {e}")))?;
            let mut last = String::new();
            for attempt in 0..3u32 {
                if attempt > 0 {
                    std::thread::sleep(Duration::from_secs(u64::from(attempt)));
                }
                let response = match self
                    .client
                    .post(&self.url)
                    .header("Content-Type", "application/timestamp-query")
                    .body(request.clone())
                    .send()
                {
                    Ok(r) => r,
                    Err(e) => {
                        last = format!("cannot reach it: {e}");
                        continue;
                    }
                };
                let status = response.status();
                if status.is_server_error() {
                    last = format!("it answered HTTP {status}");
                    continue;
                }
                if !status.is_success() {
                    return Err(self.error(format!("it answered HTTP {status}")));
                }
                let mut body = Vec::new();
                response
                    .take(MAX_REPLY + 1)
                    .read_to_end(&mut body)
                    .map_err(|e| self.error(format!("cannot read its reply: {e}")))?;
                if body.len() as u64 > MAX_REPLY {
                    return Err(self.error("its reply is larger than 1 MiB".into()));
                }
                let token = parse_reply(&body).map_err(|e| self.error(e))?;
                if token.nonce.as_deref() != Some(&nonce[..]) {
                    return Err(self.error("its reply does not carry our nonce".into()));
                }
                check_parsed(&token, data, None).map_err(|e| self.error(e))?;
                return Ok(body);
            }
            Err(self.error(last))
        }
    }

    /// A DER `TimeStampReq` for a SHA-256 `digest`, asking for the certificate.
    pub(super) fn request_der(digest: &[u8], nonce: &[u8]) -> der::Result<Vec<u8>> {
        TimeStampReq {
            version: TspVersion::V1,
            message_imprint: MessageImprint {
                hash_algorithm: AlgorithmIdentifierOwned {
                    oid: SHA256,
                    parameters: Some(Any::null()),
                },
                hashed_message: OctetString::new(digest)?,
            },
            req_policy: None,
            nonce: Some(Int::new(nonce)?),
            cert_req: true,
            extensions: None,
        }
        .to_der()
    }
}

#[cfg(feature = "tsa-client")]
pub use client::TimestampAuthority;

/// Check the stored reply `reply` against the tag manifest bytes it stamps,
/// and, when `anchors` holds the auditor's TSA CA certificates, against them.
/// Never panics, whatever the bytes.
///
/// # Errors
/// Why the reply does not prove the time of `data`.
pub(crate) fn check_reply(
    reply: &[u8],
    data: &[u8],
    anchors: Option<&[Certificate]>,
) -> std::result::Result<TimestampInfo, String> {
    let token = parse_reply(reply)?;
    check_parsed(&token, data, anchors)
}

/// The TSA CA certificates in the PEM file `text` (one or more; text around
/// the blocks, as in CA bundles, is ignored).
///
/// # Errors
/// When `text` holds no PEM certificate or one does not parse.
pub(crate) fn parse_anchors(text: &[u8]) -> std::result::Result<Vec<Certificate>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = std::str::from_utf8(text).map_err(|_| "is not PEM text")?;
    let mut certs = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let block = &rest[start..];
        let end = block
            .find(END)
            .ok_or("has a certificate without its END line")?
            + END.len();
        let cert = Certificate::from_pem(&block[..end])
            .map_err(|e| format!("certificate {} does not parse: {e}", certs.len() + 1))?;
        certs.push(cert);
        rest = &block[end..];
    }
    if certs.is_empty() {
        return Err("holds no PEM certificate".into());
    }
    Ok(certs)
}

/// The parts of a reply that checking needs.
struct Token {
    tst: TstInfo,
    tst_der: Vec<u8>,
    signed: SignedData,
    #[cfg_attr(not(feature = "tsa-client"), allow(dead_code))]
    nonce: Option<Vec<u8>>,
}

fn parse_reply(reply: &[u8]) -> std::result::Result<Token, String> {
    let resp = TimeStampResp::from_der(reply).map_err(|e| format!("not a TimeStampResp: {e}"))?;
    match resp.status.status {
        PkiStatus::Accepted | PkiStatus::GrantedWithMods => {}
        other => {
            let text = resp
                .status
                .status_string
                .as_ref()
                .map(|s| {
                    s.iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            return Err(format!("the TSA refused: {other:?} {text}")
                .trim()
                .to_owned());
        }
    }
    let token = resp
        .time_stamp_token
        .ok_or("the reply holds no timestamp token")?;
    if token.content_type != SIGNED_DATA {
        return Err("the token is not CMS SignedData".into());
    }
    let signed = token
        .content
        .decode_as::<SignedData>()
        .map_err(|e| format!("the token's SignedData does not parse: {e}"))?;
    if signed.encap_content_info.econtent_type != TST_INFO {
        return Err("the token does not hold a TSTInfo".into());
    }
    let econtent = signed
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or("the token's TSTInfo is missing")?;
    let tst_der = econtent
        .decode_as::<OctetString>()
        .map_err(|e| format!("the token's content is not an OCTET STRING: {e}"))?
        .into_bytes();
    let tst =
        TstInfo::from_der(&tst_der).map_err(|e| format!("the TSTInfo does not parse: {e}"))?;
    let nonce = tst.nonce.as_ref().map(|n| n.as_bytes().to_vec());
    Ok(Token {
        tst,
        tst_der,
        signed,
        nonce,
    })
}

fn check_parsed(
    token: &Token,
    data: &[u8],
    anchors: Option<&[Certificate]>,
) -> std::result::Result<TimestampInfo, String> {
    let imprint = &token.tst.message_imprint;
    let expected = digest(imprint.hash_algorithm.oid, data)
        .ok_or("the token stamps a digest of an unsupported kind")?;
    if imprint.hashed_message.as_bytes() != expected.as_slice() {
        return Err("the token stamps other data, not this tag manifest".into());
    }

    let signer_info = match token.signed.signer_infos.0.as_slice() {
        [one] => one,
        [] => return Err("the token has no signer".into()),
        _ => return Err("the token has more than one signer".into()),
    };
    let certs: Vec<&Certificate> = token
        .signed
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|c| match c {
            CertificateChoices::Certificate(cert) => Some(cert),
            CertificateChoices::Other(_) => None,
        })
        .collect();
    let cert = certs
        .iter()
        .copied()
        .find(|c| names_signer(c, &signer_info.sid))
        .ok_or("the token does not carry the TSA certificate it was signed with")?;

    let attrs = signer_info
        .signed_attrs
        .as_ref()
        .ok_or("the token has no signed attributes")?;
    let attr = |oid: ObjectIdentifier| -> std::result::Result<&Any, String> {
        attrs
            .iter()
            .find(|a| a.oid == oid)
            .and_then(|a| a.values.iter().next())
            .ok_or_else(|| format!("the token's signed attributes lack {oid}"))
    };
    let content_type = attr(CONTENT_TYPE)?
        .decode_as::<ObjectIdentifier>()
        .map_err(|_| "the token's content-type attribute does not parse")?;
    if content_type != TST_INFO {
        return Err("the token's content-type attribute is not TSTInfo".into());
    }
    let content_digest = attr(MESSAGE_DIGEST)?
        .decode_as::<OctetString>()
        .map_err(|_| "the token's message-digest attribute does not parse")?;
    let tst_digest = digest(signer_info.digest_alg.oid, &token.tst_der)
        .ok_or("the token uses an unsupported digest")?;
    if content_digest.as_bytes() != tst_digest.as_slice() {
        return Err("the token's TSTInfo does not match its signed digest".into());
    }
    let signed_attrs = attrs
        .to_der()
        .map_err(|e| format!("cannot encode the signed attributes: {e}"))?;
    verify_signature(
        &cert.tbs_certificate.subject_public_key_info,
        &signer_info.signature_algorithm,
        Some(signer_info.digest_alg.oid),
        &signed_attrs,
        signer_info.signature.as_bytes(),
    )
    .map_err(|e| format!("the token's signature does not verify: {e}"))?;

    if !stamps_time(cert) {
        return Err("the signing certificate is not for time stamping".into());
    }
    let at = token.tst.gen_time.to_unix_duration();
    let validity = &cert.tbs_certificate.validity;
    if at < validity.not_before.to_unix_duration() || at > validity.not_after.to_unix_duration() {
        return Err("the TSA certificate was not valid at the stamped time".into());
    }
    let trusted = match anchors {
        Some(anchors) => {
            chains_to(cert, &certs, anchors)?;
            true
        }
        None => false,
    };
    let time = i64::try_from(at.as_secs())
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, at.subsec_nanos()))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .ok_or("the stamped time is out of range")?;
    Ok(TimestampInfo {
        time,
        authority: cert.tbs_certificate.subject.to_string(),
        serial: hex::encode(token.tst.serial_number.as_bytes()),
        trusted,
    })
}

/// Whether `cert` is the one `sid` names.
fn names_signer(cert: &Certificate, sid: &SignerIdentifier) -> bool {
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(id) => {
            cert.tbs_certificate.issuer == id.issuer
                && cert.tbs_certificate.serial_number == id.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(id) => extension(cert, SUBJECT_KEY_ID)
            .and_then(|v| SubjectKeyIdentifier::from_der(v).ok())
            .is_some_and(|ski| ski == *id),
    }
}

/// The value of `cert`'s extension `oid`.
fn extension(cert: &Certificate, oid: ObjectIdentifier) -> Option<&[u8]> {
    cert.tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == oid)
        .map(|e| e.extn_value.as_bytes())
}

/// RFC 3161 2.3: a TSA certificate's extended key usage is time stamping.
fn stamps_time(cert: &Certificate) -> bool {
    extension(cert, EXT_KEY_USAGE)
        .and_then(|v| ExtendedKeyUsage::from_der(v).ok())
        .is_some_and(|eku| eku.0.contains(&TIME_STAMPING))
}

/// Walk from `cert` through the token's certificates to one of `anchors`,
/// checking each signature on the way.
fn chains_to(
    cert: &Certificate,
    carried: &[&Certificate],
    anchors: &[Certificate],
) -> std::result::Result<(), String> {
    let untrusted = "the TSA certificate does not chain to a CA in the TSA certificates given";
    let mut current = cert;
    for _ in 0..8 {
        if anchors.iter().any(|a| a == current) {
            return Ok(());
        }
        let issued = |issuer: &Certificate| {
            issuer.tbs_certificate.subject == current.tbs_certificate.issuer
                && current
                    .tbs_certificate
                    .to_der()
                    .ok()
                    .and_then(|tbs| {
                        let signature = current.signature.as_bytes()?;
                        verify_signature(
                            &issuer.tbs_certificate.subject_public_key_info,
                            &current.signature_algorithm,
                            None,
                            &tbs,
                            signature,
                        )
                        .ok()
                    })
                    .is_some()
        };
        if anchors.iter().any(issued) {
            return Ok(());
        }
        match carried.iter().copied().find(|c| *c != current && issued(c)) {
            Some(next) => current = next,
            None => return Err(untrusted.into()),
        }
    }
    Err(untrusted.into())
}

/// The digest of `data` by the algorithm `oid`, if it is SHA-2.
fn digest(oid: ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    let algorithm = match oid {
        SHA256 => &ring::digest::SHA256,
        SHA384 => &ring::digest::SHA384,
        SHA512 => &ring::digest::SHA512,
        _ => return None,
    };
    Some(ring::digest::digest(algorithm, data).as_ref().to_vec())
}

/// Verify `signature` over `message` by `key`, with the signature algorithm
/// `algorithm` (for CMS, `rsaEncryption` takes its hash from `digest_alg`).
fn verify_signature(
    key: &SubjectPublicKeyInfoOwned,
    algorithm: &AlgorithmIdentifierOwned,
    digest_alg: Option<ObjectIdentifier>,
    message: &[u8],
    signature: &[u8],
) -> std::result::Result<(), String> {
    let key_bytes = key
        .subject_public_key
        .as_bytes()
        .ok_or("the public key is not whole bytes")?;
    let curve = || {
        key.algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
    };
    let scheme: &'static dyn VerificationAlgorithm = match (key.algorithm.oid, algorithm.oid) {
        (RSA, RSA_SHA256) => &sig::RSA_PKCS1_2048_8192_SHA256,
        (RSA, RSA_SHA384) => &sig::RSA_PKCS1_2048_8192_SHA384,
        (RSA, RSA_SHA512) => &sig::RSA_PKCS1_2048_8192_SHA512,
        (RSA, RSA) => match digest_alg {
            Some(SHA256) => &sig::RSA_PKCS1_2048_8192_SHA256,
            Some(SHA384) => &sig::RSA_PKCS1_2048_8192_SHA384,
            Some(SHA512) => &sig::RSA_PKCS1_2048_8192_SHA512,
            _ => return Err("RSA with an unsupported digest".into()),
        },
        (EC_KEY, ECDSA_SHA256) => match curve() {
            Some(P256) => &sig::ECDSA_P256_SHA256_ASN1,
            Some(P384) => &sig::ECDSA_P384_SHA256_ASN1,
            _ => return Err("ECDSA on an unsupported curve".into()),
        },
        (EC_KEY, ECDSA_SHA384) => match curve() {
            Some(P256) => &sig::ECDSA_P256_SHA384_ASN1,
            Some(P384) => &sig::ECDSA_P384_SHA384_ASN1,
            _ => return Err("ECDSA on an unsupported curve".into()),
        },
        (ED25519, ED25519) => &sig::ED25519,
        (k, s) => return Err(format!("unsupported key {k} with signature algorithm {s}")),
    };
    UnparsedPublicKey::new(scheme, key_bytes)
        .verify(message, signature)
        .map_err(|_| "bad signature".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "tsa-client")]
    fn the_request_is_a_der_timestampreq_with_our_digest_and_nonce() {
        let digest = [7u8; 32];
        let der = client::request_der(&digest, &[0x11, 0x22]).expect("encodes");
        let req = x509_tsp::TimeStampReq::from_der(&der).expect("parses");
        assert_eq!(req.message_imprint.hash_algorithm.oid, SHA256);
        assert_eq!(req.message_imprint.hashed_message.as_bytes(), &digest);
        assert_eq!(
            req.nonce.map(|n| n.as_bytes().to_vec()),
            Some(vec![0x11, 0x22])
        );
        assert!(req.cert_req);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&b""[..], b"\x30", b"\x30\x03\x02\x01\x00", &[0xff; 64]] {
            assert!(check_reply(bytes, b"x", None).is_err());
        }
    }

    #[test]
    fn no_anchors_in_a_file_without_certificates() {
        for text in [
            &b""[..],
            b"\n",
            b"not pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA",
        ] {
            assert!(parse_anchors(text).is_err());
        }
    }
}
