//! Signing keys and SSHSIG signatures (the format `ssh-keygen -Y sign` writes).

use std::path::Path;

use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};

use super::timestamp::Stamp;
use super::NAMESPACE;
use crate::error::{Error, ErrorKind, Result, ResultExt};

/// A loaded private key and the identity it signs as.
pub struct Signer {
    key: PrivateKey,
    identity: String,
    timestamps: Option<Box<dyn Stamp>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("identity", &self.identity)
            .field("key", &"[redacted]")
            .field("timestamps", &self.timestamps.as_ref().map(|t| t.url()))
            .finish()
    }
}

impl Signer {
    /// A signer from a decrypted key.
    ///
    /// # Errors
    /// When the key is not Ed25519.
    pub fn new(key: PrivateKey, identity: &str) -> Result<Signer> {
        if key.algorithm() != Algorithm::Ed25519 {
            return Err(Error::new(
                ErrorKind::Auth,
                format!("signing key is {}, expected ssh-ed25519", key.algorithm()),
            ));
        }
        Ok(Signer {
            key,
            identity: identity.to_owned(),
            timestamps: None,
        })
    }

    /// This signer, having each signature stamped by `authority`.
    pub fn with_timestamps(self, authority: impl Stamp + 'static) -> Signer {
        Signer {
            timestamps: Some(Box::new(authority)),
            ..self
        }
    }

    /// The Time-Stamp Authority that stamps this signer's signatures, if any.
    pub fn timestamps(&self) -> Option<&dyn Stamp> {
        self.timestamps.as_deref()
    }

    /// The signer identity (for `allowed_signers` and `-I`).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The public key in OpenSSH form.
    ///
    /// # Errors
    /// Never for a valid Ed25519 key.
    pub fn public_key(&self) -> Result<String> {
        self.key
            .public_key()
            .to_openssh()
            .context(|| "cannot encode public key")
    }

    /// SHA-256 fingerprint of the public key (`SHA256:...`).
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// An `allowed_signers` line for this key.
    ///
    /// # Errors
    /// Never for a valid Ed25519 key.
    pub fn allowed_signers_line(&self) -> Result<String> {
        Ok(format!(
            "{} namespaces=\"{NAMESPACE}\" {}\n",
            self.identity,
            self.public_key()?
        ))
    }

    /// An armored SSHSIG signature over `message` in [`NAMESPACE`].
    ///
    /// # Errors
    /// On a signing failure.
    pub fn sign(&self, message: &[u8]) -> Result<String> {
        let sig = self
            .key
            .sign(NAMESPACE, HashAlg::Sha512, message)
            .context(|| "cannot sign the tag manifest")?;
        sig.to_pem(LineEnding::LF)
            .context(|| "cannot encode the signature")
    }
}

/// A freshly generated key pair, written to disk.
pub struct KeyPair {
    /// The signer over the new key.
    pub signer: Signer,
}

/// Check a signer identity: it becomes the principal of an `allowed_signers`
/// line, where whitespace ends it, commas separate patterns, `*`, `?` and `!`
/// are pattern syntax and quotes open an option. So it must be non-empty and
/// hold none of those, nor control characters.
///
/// # Errors
/// When it is empty or holds such a character; the message names it.
pub fn validate_identity(identity: &str) -> Result<()> {
    let example = "use an address-like name such as compliance@msp.example";
    if identity.is_empty() {
        return Err(Error::invalid(format!(
            "the signer identity is empty; {example}"
        )));
    }
    if let Some(c) = identity
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, ',' | '*' | '?' | '!' | '"'))
    {
        let what = match c {
            ',' => "a comma (it would split the allowed_signers principal)".to_owned(),
            '*' | '?' | '!' => format!("`{c}` (pattern syntax in allowed_signers)"),
            '"' => "a quote".to_owned(),
            c if c.is_whitespace() => {
                "whitespace (it would end the allowed_signers principal)".to_owned()
            }
            _ => "a control character".to_owned(),
        };
        return Err(Error::invalid(format!(
            "the signer identity {identity:?} holds {what}; {example}"
        )));
    }
    Ok(())
}

/// Generate an Ed25519 key, write it (`path`, mode 0600) and its `.pub`, and
/// encrypt it when a passphrase is given.
///
/// # Errors
/// When `identity` is not a usable signer identity ([`validate_identity`]), on
/// I/O failure, or when `path` already exists.
pub fn generate_key(path: &Path, identity: &str, passphrase: Option<&str>) -> Result<KeyPair> {
    validate_identity(identity)?;
    if path.exists() {
        return Err(Error::invalid(format!(
            "{} already exists; not overwriting a key",
            path.display()
        )));
    }
    let mut rng = ssh_key::rand_core::OsRng;
    let mut key =
        PrivateKey::random(&mut rng, Algorithm::Ed25519).context(|| "cannot generate a key")?;
    key.set_comment(identity);
    let stored = match passphrase {
        Some(p) => key
            .encrypt(&mut rng, p)
            .context(|| "cannot encrypt the key")?,
        None => key.clone(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
    }
    stored
        .write_openssh_file(path, LineEnding::LF)
        .context(|| format!("cannot write {}", path.display()))?;
    let public = key
        .public_key()
        .to_openssh()
        .context(|| "cannot encode public key")?;
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    let pub_path = std::path::PathBuf::from(pub_path);
    crate::atomic::write_atomic(&pub_path, format!("{public}\n").as_bytes())
        .context(|| format!("cannot write {}", pub_path.display()))?;
    Ok(KeyPair {
        signer: Signer::new(key, identity)?,
    })
}
