//! Certificate credentials for Entra ID: a JWT client assertion signed PS256
//! with the app's private key, naming the certificate by its SHA-256
//! thumbprint (`x5t#S256`), as the Microsoft identity platform accepts it.
//!
//! The certificate file is PEM holding the private key (`PRIVATE KEY`, PKCS#8,
//! or `RSA PRIVATE KEY`, PKCS#1, unencrypted) and the certificate
//! (`CERTIFICATE`) registered on the app. The key never leaves this module:
//! assertions are built fresh for each token request and live ten minutes.

use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::rand_core::{OsRng, RngCore};
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::RsaPrivateKey;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::collect::auth::{AssertionBuilder, AuthError};
use crate::secret::Secret;

/// How long an assertion is valid.
const LIFETIME_SECS: i64 = 600;

/// A loaded certificate credential.
pub struct CertificateCredential {
    key: RsaPrivateKey,
    thumbprint: String,
    client_id: String,
}

impl std::fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("x5t#S256", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

/// The PEM blocks of a file: (label, DER bytes).
pub fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after.find("-----").ok_or("a PEM header is not closed")?;
        let label = after[..label_end].to_owned();
        let end_marker = format!("-----END {label}-----");
        let body_start = label_end + 5;
        let end = after
            .find(&end_marker)
            .ok_or_else(|| format!("the PEM block {label} has no END line"))?;
        let body: String = after[body_start..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if body.contains(':') {
            return Err(format!(
                "the PEM block {label} is encrypted; give an unencrypted key"
            ));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| format!("the PEM block {label} is not valid base64"))?;
        blocks.push((label, der));
        rest = &after[end + end_marker.len()..];
    }
    Ok(blocks)
}

/// `x5t#S256`: base64url (no padding) of the SHA-256 of the certificate's DER.
pub fn thumbprint_s256(cert_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(cert_der))
}

impl CertificateCredential {
    /// Read the key and certificate from `path`.
    ///
    /// # Errors
    /// When the file is unreadable, lacks a key or a certificate, or holds an
    /// encrypted or non-RSA key. Messages name the file, never its content.
    pub fn load(path: &Path, client_id: &str) -> Result<CertificateCredential, String> {
        let text = std::fs::read_to_string(crate::secret::secret_file(path))
            .map_err(|e| format!("cannot read certificate file {}: {e}", path.display()))?;
        let blocks = pem_blocks(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut key = None;
        let mut cert = None;
        for (label, der) in &blocks {
            match label.as_str() {
                "PRIVATE KEY" => {
                    key = Some(RsaPrivateKey::from_pkcs8_der(der).map_err(|_| {
                        format!(
                            "{}: the PRIVATE KEY is not an RSA key in PKCS#8",
                            path.display()
                        )
                    })?)
                }
                "RSA PRIVATE KEY" => {
                    key = Some(RsaPrivateKey::from_pkcs1_der(der).map_err(|_| {
                        format!("{}: the RSA PRIVATE KEY cannot be read", path.display())
                    })?)
                }
                "ENCRYPTED PRIVATE KEY" => {
                    return Err(format!(
                        "{}: the private key is encrypted; give an unencrypted key (protect the file instead)",
                        path.display()
                    ))
                }
                "CERTIFICATE" if cert.is_none() => cert = Some(der.clone()),
                _ => {}
            }
        }
        let key = key.ok_or_else(|| format!("{}: no private key found", path.display()))?;
        let cert = cert.ok_or_else(|| format!("{}: no CERTIFICATE found", path.display()))?;
        Ok(CertificateCredential {
            key,
            thumbprint: thumbprint_s256(&cert),
            client_id: client_id.to_owned(),
        })
    }

    /// The certificate's `x5t#S256` thumbprint.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// A signed client assertion for `token_url`, valid from now for ten minutes.
    ///
    /// # Errors
    /// When signing fails (no randomness available).
    pub fn assertion(&self, token_url: &str) -> Result<Secret, AuthError> {
        let now = chrono::Utc::now().timestamp();
        let mut jti = [0u8; 16];
        OsRng.try_fill_bytes(&mut jti).map_err(|_| {
            AuthError("no randomness available to sign the client assertion".into())
        })?;
        let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.thumbprint});
        let claims = json!({
            "aud": token_url,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": hex::encode(jti),
            "nbf": now,
            "iat": now,
            "exp": now + LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signer = rsa::pss::BlindedSigningKey::<rsa::sha2::Sha256>::new(self.key.clone());
        let signature = signer
            .try_sign_with_rng(&mut OsRng, signing_input.as_bytes())
            .map_err(|_| AuthError("cannot sign the client assertion".into()))?;
        Ok(Secret::new(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )))
    }

    /// This credential as an assertion builder for the token cache.
    pub fn into_builder(self) -> Arc<AssertionBuilder> {
        Arc::new(move |url: &str| self.assertion(url))
    }
}

/// The DER of the `SubjectPublicKeyInfo` inside an X.509 certificate.
///
/// # Errors
/// When the DER is not a certificate.
pub fn certificate_spki(cert_der: &[u8]) -> Result<&[u8], String> {
    /// (tag, contents, the whole element, what follows it)
    type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);
    fn tlv(input: &[u8]) -> Result<Tlv<'_>, String> {
        let (&tag, rest) = input.split_first().ok_or("truncated DER")?;
        let (&first, rest) = rest.split_first().ok_or("truncated DER")?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err("bad DER length".into());
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err("truncated DER".into());
        }
        let header_len = input.len() - rest.len();
        Ok((tag, &rest[..len], &input[..header_len + len], &rest[len..]))
    }
    let (_, cert, _, _) = tlv(cert_der)?;
    let (_, tbs, _, _) = tlv(cert)?;
    let mut rest = tbs;
    let (tag, _, _, after) = tlv(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        rest = tlv(rest)?.3;
    }
    let (tag, _, whole, _) = tlv(rest)?;
    if tag != 0x30 {
        return Err("no SubjectPublicKeyInfo".into());
    }
    Ok(whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_split_and_encrypted_keys_refused() {
        let text = "x\n-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
        let blocks = pem_blocks(text).expect("valid");
        assert_eq!(blocks, vec![("CERTIFICATE".to_owned(), vec![0, 1, 2])]);
        let enc = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAEC\n-----END RSA PRIVATE KEY-----\n";
        assert!(pem_blocks(enc).is_err());
        assert!(pem_blocks("-----BEGIN X-----\nAA").is_err());
    }

    #[test]
    fn thumbprint_is_base64url_sha256() {
        assert_eq!(
            thumbprint_s256(b""),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }
}
