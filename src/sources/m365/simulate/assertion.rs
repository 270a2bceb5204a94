//! How the simulated Entra token endpoint checks a certificate client
//! assertion: PS256 signature by the registered certificate's key, its
//! `x5t#S256` thumbprint, audience, issuer, subject and lifetime.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::Value;

use crate::sources::m365::{certificate_spki, thumbprint_s256};

/// `Ok(())` when `jwt` is a valid assertion for `client_id` at `token_url`.
pub(crate) fn verify(
    jwt: &str,
    cert_der: Option<&[u8]>,
    client_id: &str,
    token_url: &str,
) -> Result<(), String> {
    let invalid =
        |why: &str| format!("AADSTS700027: Client assertion failed signature validation ({why}).");
    let cert = cert_der.ok_or_else(|| {
        "AADSTS700027: no certificate is registered for this application.".to_owned()
    })?;
    let mut parts = jwt.split('.');
    let (Some(h), Some(c), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("not a JWT"));
    };
    let decode = |p: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| invalid("bad base64url"))?;
        serde_json::from_slice(&bytes).map_err(|_| invalid("bad JSON"))
    };
    let header = decode(h)?;
    let claims = decode(c)?;
    if header.get("alg").and_then(Value::as_str) != Some("PS256") {
        return Err(invalid("alg must be PS256"));
    }
    if header.get("x5t#S256").and_then(Value::as_str) != Some(thumbprint_s256(cert).as_str()) {
        return Err(
            "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application."
                .to_owned(),
        );
    }
    let spki = certificate_spki(cert).map_err(|e| invalid(&e))?;
    let key = rsa::RsaPublicKey::from_public_key_der(spki)
        .map_err(|_| invalid("not an RSA certificate"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| invalid("bad signature encoding"))?;
    let signature = rsa::pss::Signature::try_from(signature.as_slice())
        .map_err(|_| invalid("bad signature"))?;
    rsa::pss::VerifyingKey::<rsa::sha2::Sha256>::new(key)
        .verify(format!("{h}.{c}").as_bytes(), &signature)
        .map_err(|_| invalid("signature does not verify"))?;
    let claim = |k: &str| claims.get(k).and_then(Value::as_str);
    if claim("aud") != Some(token_url) {
        return Err(
            "AADSTS700212: The audience claim of the client assertion is not the token endpoint."
                .into(),
        );
    }
    if claim("iss") != Some(client_id) || claim("sub") != Some(client_id) {
        return Err("AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter.".into());
    }
    if claim("jti").is_none_or(str::is_empty) {
        return Err(invalid("no jti"));
    }
    let now = chrono::Utc::now().timestamp();
    let num = |k: &str| claims.get(k).and_then(Value::as_i64);
    match (num("nbf"), num("exp")) {
        (Some(nbf), Some(exp)) if nbf <= now + 300 && exp > now && exp - nbf <= 3600 => Ok(()),
        (_, Some(exp)) if exp <= now => {
            Err("AADSTS700024: Client assertion is not within its valid time range.".into())
        }
        _ => Err(invalid("bad nbf/exp")),
    }
}
